"""services/accounts.py: users, password hashing, tokens and login throttling in the history's database."""

from __future__ import annotations

import pytest

from services import accounts
from services.accounts import AccountError, AccountStore, hash_password, role_allows, verify_password
from services.history import HistoryStore

PASSWORD = "correct horse battery"


@pytest.fixture()
def store(tmp_path) -> AccountStore:
    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    yield AccountStore(history)
    history.dispose()


def test_password_hash_is_salted_scrypt_and_verifies_only_the_password():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$32768$8$1$") and first != second and PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "x", first)
    assert not verify_password(PASSWORD, "garbage") and not verify_password(PASSWORD, "md5$x$y$z$a$b")


@pytest.mark.parametrize("password", ["short", "x" * 1025, None])
def test_weak_or_odd_passwords_are_refused(password):
    with pytest.raises(AccountError):
        hash_password(password)


def test_roles_rank_admin_over_operator_over_viewer():
    assert role_allows("admin", "operator") and role_allows("operator", "viewer")
    assert not role_allows("viewer", "operator") and not role_allows("operator", "admin")
    assert not role_allows(None, "viewer") and not role_allows("root", "viewer")


def test_users_add_list_remove_and_bad_input(store):
    store.add_user("ada", "operator", PASSWORD)
    with pytest.raises(AccountError, match="exists"):
        store.add_user("ada", "viewer", PASSWORD)
    with pytest.raises(AccountError, match="role"):
        store.add_user("bob", "root", PASSWORD)
    with pytest.raises(AccountError, match="name"):
        store.add_user("bad name", "viewer", PASSWORD)
    assert [(user["name"], user["role"]) for user in store.list_users()] == [("ada", "operator")]
    assert "password_hash" not in store.list_users()[0]
    assert store.remove_user("ada") and not store.remove_user("ada")
    assert store.list_users() == []


def test_authenticate_checks_the_password(store):
    store.add_user("ada", "viewer", PASSWORD)
    assert store.authenticate("ada", PASSWORD, "10.0.0.1") == accounts.User("ada", "viewer")
    assert store.authenticate("ada", "wrong password!", "10.0.0.1") is None
    assert store.authenticate("nobody", PASSWORD, "10.0.0.1") is None


def test_repeated_failures_lock_the_name_even_with_the_right_password(store, monkeypatch):
    monkeypatch.setattr(accounts, "MAX_FAILURES", 3)
    store.add_user("ada", "viewer", PASSWORD)
    for _ in range(3):
        assert store.authenticate("ada", "wrong password!", "10.0.0.1") is None
    assert store.locked("ada", "10.0.0.9")
    assert store.authenticate("ada", PASSWORD, "10.0.0.9") is None
    store.add_user("bob", "viewer", PASSWORD)
    assert store.authenticate("bob", PASSWORD, "10.0.0.1") is not None  # another name is not locked


def test_failures_from_one_address_lock_that_address(store, monkeypatch):
    monkeypatch.setattr(accounts, "MAX_FAILURES_PER_ADDRESS", 4)
    store.add_user("ada", "viewer", PASSWORD)
    for number in range(4):
        store.authenticate(f"guess{number}", "wrong password!", "10.0.0.66")
    assert store.authenticate("ada", PASSWORD, "10.0.0.66") is None
    assert store.authenticate("ada", PASSWORD, "10.0.0.1") is not None


def test_a_second_store_on_the_same_database_sees_the_same_lockout(store, tmp_path, monkeypatch):
    monkeypatch.setattr(accounts, "MAX_FAILURES", 2)
    store.add_user("ada", "viewer", PASSWORD)
    store.authenticate("ada", "wrong password!", "a")
    other = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    try:
        AccountStore(other).authenticate("ada", "wrong password!", "b")
        assert store.locked("ada", "c")
    finally:
        other.dispose()


def test_tokens_are_shown_once_stored_hashed_and_end_on_revocation(store):
    store.add_user("ada", "operator", PASSWORD)
    token_id, token = store.create_token("ada", "nightly script")
    assert token.startswith(f"gem_{token_id}_")
    assert store.user_for_token(token) == accounts.User("ada", "operator")
    with store.engine.connect() as connection:
        stored = [tuple(row) for row in connection.execute(store.tokens.select())]
    assert not any(token in str(value) for row in stored for value in row)
    listed = store.list_tokens()
    assert listed[0]["token_id"] == token_id and listed[0]["last_used_at"] is not None
    assert store.user_for_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.revoke_token(token_id) and not store.revoke_token(token_id)
    assert store.user_for_token(token) is None


def test_a_token_follows_its_owner(store):
    store.add_user("ada", "operator", PASSWORD)
    _, token = store.create_token("ada")
    store.set_role("ada", "viewer")
    assert store.user_for_token(token).role == "viewer"
    store.remove_user("ada")
    assert store.user_for_token(token) is None
    with pytest.raises(AccountError, match="no user"):
        store.create_token("ghost")


# -- the command line ------------------------------------------------------------------------------
def _cli(tmp_path, *args, capsys):
    from app.__main__ import main

    code = main(["--instance", str(tmp_path), "--database-url", f"sqlite:///{tmp_path / 'history.db'}", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_manages_users_and_tokens(tmp_path, capsys):
    code, out, _ = _cli(tmp_path, "users", "add", "ada", "--role", "operator", "--generate-password", capsys=capsys)
    assert code == 0 and "added ada (operator)" in out
    password = out.split("password (shown once): ", 1)[1].strip()
    code, out, err = _cli(tmp_path, "users", "add", "ada", "--role", "viewer", "--generate-password", capsys=capsys)
    assert code == 1 and "exists" in err
    code, out, _ = _cli(tmp_path, "users", "list", capsys=capsys)
    assert out.startswith("ada\toperator\t")
    code, out, _ = _cli(tmp_path, "tokens", "create", "ada", "--label", "nightly", capsys=capsys)
    token = out.splitlines()[1]
    token_id = token.split("_")[1]
    code, out, _ = _cli(tmp_path, "tokens", "list", capsys=capsys)
    assert out.startswith(f"{token_id}\tada\tnightly\tnever used\tactive") and token not in out
    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    store = AccountStore(history)
    assert store.authenticate("ada", password, "cli") is not None and store.user_for_token(token) is not None
    code, out, _ = _cli(tmp_path, "tokens", "revoke", token_id, capsys=capsys)
    assert code == 0 and store.user_for_token(token) is None
    assert _cli(tmp_path, "tokens", "revoke", token_id, capsys=capsys)[0] == 1
    assert _cli(tmp_path, "users", "role", "ada", "viewer", capsys=capsys)[0] == 0
    assert store.get_user("ada").role == "viewer"
    assert _cli(tmp_path, "users", "remove", "ada", capsys=capsys)[0] == 0
    assert _cli(tmp_path, "users", "remove", "ada", capsys=capsys)[0] == 1
    assert _cli(tmp_path, "tokens", "create", "ada", capsys=capsys)[0] == 1
    history.dispose()


def test_cli_asks_for_the_password_twice_and_refuses_a_mismatch_or_a_weak_one(tmp_path, capsys):
    from app.__main__ import accounts_command, parse_command_line
    from app.settings import Settings

    settings = Settings(instance_dir=tmp_path)
    _, command = parse_command_line(["users", "add", "bob", "--role", "viewer"])
    answers = iter(["a long password", "another password"])
    assert accounts_command(settings, command, read_password=lambda _prompt: next(answers)) == 1
    assert "differ" in capsys.readouterr().err
    answers = iter(["short", "short"])
    assert accounts_command(settings, command, read_password=lambda _prompt: next(answers)) == 1
    answers = iter(["a long password", "a long password"])
    assert accounts_command(settings, command, read_password=lambda _prompt: next(answers)) == 0
    history = HistoryStore(settings.resolved_database_url)
    assert AccountStore(history).authenticate("bob", "a long password", "cli") is not None
    history.dispose()


def test_records_and_batches_carry_their_submitter_into_the_history(tmp_path):
    from services.jobs.store import JobStore
    from tests.test_history import _record

    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    jobs = JobStore(history)
    history.author = lambda: "otto"  # in a request of otto's
    job_id = jobs.create(source="api-records", name="r.npy", files=[("r.npy", b"x")], sender="prosumer-a",
                         receiver="consumer-home")
    batch = jobs.create_many([{"name": "b.npy", "files": [("b.npy", b"x")], "sender": "prosumer-a",
                               "receiver": "consumer-home"}], source="batch", batch_id="b1")
    history.author = lambda: None  # the worker that finishes them serves no request
    first = jobs.finish(job_id, history._row(_record(source="api-records")))
    second = jobs.finish(batch[0], history._row(_record(source="batch")))
    assert history.get(first, include_waveform=False)["user"] == "otto"
    assert history.get(second, include_waveform=False)["user"] == "otto"
    history.dispose()
