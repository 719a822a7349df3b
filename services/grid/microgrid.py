"""The P2P microgrid as one data definition: nodes, edges, ratings, operating point, tariffs.

The dashboard draws this graph, the power flow is built from it and the impact rules reason on it,
so there is exactly one place that says what is connected to what and how big it is.

Conventions: edges point downstream (from the utility towards the peers). A transformer node has
two terminals, "hv" and "lv"; an edge ending at a transformer node attaches to its "hv" terminal,
an edge leaving it attaches to its "lv" terminal, unless the edge names a port. Power in kW, kvar,
kVA; energy in kWh; storage power is positive when discharging.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache

# --- node ids of the original interface (docs/contracts.md, "Microgrid ids") -------------------------------------
PROSUMER_A = "prosumer-a"
PROSUMER_B = "prosumer-b"
COMMUNITY_BATTERY = "community-battery"
MICRO_INDUSTRY = "micro-industry"
CONSUMER_HOME = "consumer-home"
EV_HUB = "ev-hub"
LOCAL_BUSINESS = "local-business"
CONSUMER_LOAD = "consumer-load"
MICROGRID_HUB = "microgrid-hub"

# --- equipment node ids (where events happen) ------------------------------------------------------
UTILITY_GRID = "utility-grid"
ISPAR_SERIES = "ispar-series"
ISPAR_EXCITING = "ispar-exciting"
MV_BUS = "mv-bus"
POWER_TRANSFORMER = "power-transformer"
PARALLEL_TRANSFORMER = "parallel-transformer"
CAPACITOR_BANK = "capacitor-bank"
NONLINEAR_LOAD = "nonlinear-load"
FEEDER_1 = "feeder-1"
FEEDER_2 = "feeder-2"
FEEDER_3 = "feeder-3"
FEEDERS: tuple[str, ...] = (FEEDER_1, FEEDER_2, FEEDER_3)

# --- edge ids -----------------------------------------------------------------------------------
CB_ISPAR_SOURCE = "cb-ispar-source"
CB_ISPAR_LOAD = "cb-ispar-load"
ISPAR_EXCITATION = "ispar-excitation"
ISPAR_BYPASS = "ispar-bypass"
CB_PT_HV = "cb-pt-hv"
CB_PT_LV = "cb-pt-lv"
CB_PTX_HV = "cb-ptx-hv"
CB_PTX_LV = "cb-ptx-lv"
CB_CAPACITOR = "cb-capacitor"
CB_FEEDER_1 = "cb-feeder-1"
CB_FEEDER_2 = "cb-feeder-2"
CB_FEEDER_3 = "cb-feeder-3"

PEERS: tuple[str, ...] = (
    PROSUMER_A, PROSUMER_B, COMMUNITY_BATTERY, MICRO_INDUSTRY,
    CONSUMER_HOME, EV_HUB, LOCAL_BUSINESS, CONSUMER_LOAD,
)
SENDERS: tuple[str, ...] = (PROSUMER_A, PROSUMER_B, COMMUNITY_BATTERY, MICRO_INDUSTRY)
RECEIVERS: tuple[str, ...] = (CONSUMER_HOME, EV_HUB, LOCAL_BUSINESS, COMMUNITY_BATTERY)

NODE_KINDS = ("utility", "transformer", "bus", "hub", "feeder", "capacitor", "prosumer", "storage",
              "generation", "load")
EDGE_KINDS = ("line", "transformer", "breaker-switch", "connection")

DEFAULT_TRANSFER_KW = 5.0
#: the transfer the pages show before the operator picks one
DEFAULT_SENDER, DEFAULT_RECEIVER = PROSUMER_A, CONSUMER_HOME
#: no single P2P trade in a microgrid of this size can be larger than this
MAX_TRANSFER_KW = 500.0


@dataclass(frozen=True)
class TransformerData:
    """Nameplate data of a two-winding unit (pandapower `create_transformer_from_parameters`)."""

    hv_kv: float
    lv_kv: float
    rated_kva: float
    vk_percent: float
    vkr_percent: float
    pfe_kw: float
    i0_percent: float
    shift_degree: float = 0.0
    vector_group: str = "Dyn5"


@dataclass(frozen=True)
class Node:
    """A bus, a piece of equipment or a peer. Ratings are nameplate; *_kw without 'rated' is now."""

    id: str
    name: str
    kind: str  # one of NODE_KINDS: drives drawing and reasoning
    technology: str  # what it is, in words
    x: float
    y: float
    voltage_kv: float
    rated_generation_kw: float = 0.0
    dispatchable: bool = False  # generation can be raised to its rating (co-generation) or is weather-bound
    rated_storage_kw: float = 0.0
    storage_kwh: float = 0.0
    rated_load_kw: float = 0.0
    grid_forming: bool = False  # can set voltage and frequency of an island
    rated_kvar: float = 0.0  # capacitor bank
    short_circuit_mva: float = 0.0  # utility connection
    transformer: TransformerData | None = None
    # default operating point
    generation_kw: float = 0.0
    load_kw: float = 0.0
    storage_kw: float = 0.0  # + discharging, - charging
    state_of_charge: float = 0.0
    power_factor: float = 0.95  # of the load, lagging
    in_service: bool = True

    @property
    def rating_kw(self) -> float:
        """Single headline rating for captions: the largest of generation, storage, load, kVA."""
        transformer_kva = self.transformer.rated_kva if self.transformer else 0.0
        return max(self.rated_generation_kw + self.rated_storage_kw, self.rated_load_kw, transformer_kva,
                   self.rated_kvar)

    @property
    def supply_capacity_kw(self) -> float:
        """What the unit can deliver to an island now: dispatchable up to rating, weather-bound as is."""
        generation = self.rated_generation_kw if self.dispatchable else self.generation_kw
        storage = self.rated_storage_kw if self.state_of_charge > 0.05 and self.storage_kwh > 0 else 0.0
        return generation + storage

    @property
    def stored_energy_kwh(self) -> float:
        return self.storage_kwh * self.state_of_charge


@dataclass(frozen=True)
class Edge:
    """A connection between two nodes, pointing downstream."""

    id: str
    name: str
    source: str
    target: str
    kind: str  # one of EDGE_KINDS
    length_km: float = 0.0
    r_ohm_per_km: float = 0.0
    x_ohm_per_km: float = 0.0
    c_nf_per_km: float = 0.0
    max_i_ka: float = 0.0
    normally_open: bool = False
    source_port: str | None = None
    target_port: str | None = None

    def rating_kva(self, voltage_kv: float) -> float:
        """Thermal rating of a line at the given voltage (0 for switches)."""
        return 3 ** 0.5 * voltage_kv * self.max_i_ka * 1000.0 if self.kind == "line" else 0.0


@dataclass(frozen=True)
class Tariffs:
    """Feed-in and retail tariffs per kWh; the P2P price sits between them."""

    feed_in_per_kwh: float = 0.06
    retail_per_kwh: float = 0.18
    p2p_share: float = 0.5  # 0 = feed-in tariff, 1 = retail tariff; midpoint by default
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not (0 <= self.feed_in_per_kwh <= self.retail_per_kwh):
            raise ValueError("tariffs must satisfy 0 <= feed-in <= retail")
        if not 0 <= self.p2p_share <= 1:
            raise ValueError("p2p_share must be between 0 (feed-in) and 1 (retail)")

    @property
    def p2p_price_per_kwh(self) -> float:
        return self.feed_in_per_kwh + self.p2p_share * (self.retail_per_kwh - self.feed_in_per_kwh)

    def value(self, kwh: float) -> float:
        """Value of an amount of energy traded peer to peer."""
        return kwh * self.p2p_price_per_kwh


@dataclass(frozen=True)
class Transfer:
    """A P2P transfer: the sender injects `kw` more, the receiver consumes `kw` more."""

    sender: str
    receiver: str
    kw: float

    def value(self, hours: float, tariffs: Tariffs) -> float:
        return tariffs.value(self.kw * hours)


@dataclass(frozen=True)
class Island:
    """A part of the grid cut off from the utility after an outage."""

    nodes: frozenset[str]
    grid_former: str | None  # the unit that sets voltage and frequency, None: it cannot stand
    load_kw: float
    supply_capacity_kw: float
    stored_energy_kwh: float

    @property
    def energised(self) -> bool:
        return self.grid_former is not None

    @property
    def balanced(self) -> bool:
        return self.energised and self.supply_capacity_kw >= self.load_kw

    @property
    def served_fraction(self) -> float:
        """Share of the island's load that stays supplied (proportional load shedding)."""
        if not self.energised:
            return 0.0
        if self.load_kw <= 0:
            return 1.0
        return min(1.0, self.supply_capacity_kw / self.load_kw)


@dataclass(frozen=True)
class Energisation:
    """Who is supplied after an outage: from the utility, from an island, or not at all."""

    grid_connected: frozenset[str]
    islands: tuple[Island, ...]
    deenergised: frozenset[str]
    opened_edges: frozenset[str] = frozenset()  # all open edges: tripped, isolating and the PCC

    @property
    def islanded(self) -> frozenset[str]:
        return frozenset(n for island in self.islands if island.energised for n in island.nodes)

    def island_of(self, node_id: str) -> Island | None:
        return next((island for island in self.islands if node_id in island.nodes), None)


@dataclass(frozen=True, eq=False)
class Microgrid:
    """The whole network. Immutable; compare and hash by content so it can key caches."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    tariffs: Tariffs = field(default_factory=Tariffs)
    name: str = "P2P microgrid"
    #: point of common coupling: opens on loss of mains so the microgrid islands on its own
    pcc_edge: str | None = None

    def __post_init__(self) -> None:
        ids = [n.id for n in self.nodes]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate node ids in the microgrid")
        edge_ids = [e.id for e in self.edges]
        if len(set(edge_ids)) != len(edge_ids) or set(edge_ids) & set(ids):
            raise ValueError("edge ids must be unique and distinct from node ids")
        known = set(ids)
        for edge in self.edges:
            if edge.source not in known or edge.target not in known:
                raise ValueError(f"edge {edge.id} joins unknown nodes")
            if edge.kind not in EDGE_KINDS:
                raise ValueError(f"edge {edge.id}: unknown kind {edge.kind!r}")
        if self.pcc_edge is not None and self.pcc_edge not in edge_ids:
            raise ValueError(f"unknown PCC edge {self.pcc_edge!r}")
        for node in self.nodes:
            if node.kind not in NODE_KINDS:
                raise ValueError(f"node {node.id}: unknown kind {node.kind!r}")

    def _key(self) -> tuple:
        return (self.nodes, self.edges, self.tariffs, self.name, self.pcc_edge)

    @cached_property
    def _hash(self) -> int:
        return hash(self._key())

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, Microgrid) and self._hash == other._hash and self._key() == other._key()

    @cached_property
    def node_by_id(self) -> Mapping[str, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def edge_by_id(self) -> Mapping[str, Edge]:
        return {e.id: e for e in self.edges}

    @cached_property
    def _adjacency(self) -> Mapping[str, tuple[tuple[str, str], ...]]:
        """node -> ((neighbour, edge id), ...) over normally closed edges."""
        adjacency: dict[str, list[tuple[str, str]]] = {n.id: [] for n in self.nodes}
        for edge in self.edges:
            if not edge.normally_open:
                adjacency[edge.source].append((edge.target, edge.id))
                adjacency[edge.target].append((edge.source, edge.id))
        return {k: tuple(v) for k, v in adjacency.items()}

    def node(self, node_id: str) -> Node:
        try:
            return self.node_by_id[node_id]
        except KeyError:
            raise KeyError(f"unknown node {node_id!r}") from None

    def incident_edges(self, node_id: str, kind: str | None = None) -> tuple[str, ...]:
        return tuple(e.id for e in self.edges if node_id in (e.source, e.target) and (kind is None or e.kind == kind))

    def with_node(self, node_id: str, **changes: object) -> Microgrid:
        """A copy with one node's fields changed (ratings, operating point)."""
        self.node(node_id)
        nodes = tuple(replace(n, **changes) if n.id == node_id else n for n in self.nodes)
        return replace(self, nodes=nodes)

    def with_tariffs(self, tariffs: Tariffs) -> Microgrid:
        return replace(self, tariffs=tariffs)

    def path(self, source: str, target: str, opened: Iterable[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Shortest path (node ids, edge ids) over closed edges; ((), ()) when there is none."""
        self.node(source)
        self.node(target)
        closed_out = set(opened)
        previous: dict[str, tuple[str, str] | None] = {source: None}
        queue: deque[str] = deque([source])
        while queue:
            current = queue.popleft()
            if current == target:
                break
            for neighbour, edge_id in self._adjacency[current]:
                if edge_id not in closed_out and neighbour not in previous:
                    previous[neighbour] = (current, edge_id)
                    queue.append(neighbour)
        if target not in previous:
            return (), ()
        nodes, edges = [target], []
        step = previous[target]
        while step is not None:
            nodes.append(step[0])
            edges.append(step[1])
            step = previous[step[0]]
        return tuple(reversed(nodes)), tuple(reversed(edges))

    def downstream(self, node_id: str) -> frozenset[str]:
        """The node and everything fed through it (following edge direction, closed edges)."""
        seen = {node_id}
        queue = deque([node_id])
        while queue:
            current = queue.popleft()
            for edge in self.edges:
                if edge.source == current and not edge.normally_open and edge.target not in seen:
                    seen.add(edge.target)
                    queue.append(edge.target)
        return frozenset(seen)

    def utility_nodes(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.nodes if n.kind == "utility" and n.in_service)

    def energisation(self, opened: Iterable[str] = (), dead: Iterable[str] = ()) -> Energisation:
        """Supply state after opening edges and forcing nodes dead (faulted or isolated equipment).

        A part cut off from the utility stays energised as an island only if it holds a grid-forming
        unit (community battery, synchronous co-generation); otherwise its inverters stop
        (anti-islanding) and it is de-energised.
        """
        opened_set, dead_set = set(opened), set(dead)
        for node_id in dead_set:
            opened_set.update(self.incident_edges(node_id))
        components = self._components(opened_set, dead_set)
        utility = set(self.utility_nodes())
        pcc = self.edge_by_id.get(self.pcc_edge) if self.pcc_edge else None
        if pcc is not None and pcc.id not in opened_set and any(
            not component & utility and pcc.source in component for component in components
        ):
            opened_set.add(pcc.id)  # loss of mains: the PCC breaker opens, the microgrid islands alone
            components = self._components(opened_set, dead_set)
        grid_connected: set[str] = set()
        islands: list[Island] = []
        deenergised: set[str] = set(dead_set)
        for component in components:
            if component & utility:
                grid_connected |= component
                continue
            island = self.island(component)
            islands.append(island)
            if not island.energised:
                deenergised |= component
        islands.sort(key=lambda i: sorted(i.nodes))
        return Energisation(frozenset(grid_connected), tuple(islands), frozenset(deenergised), frozenset(opened_set))

    def island(self, nodes: frozenset[str]) -> Island:
        members = [self.node_by_id[n] for n in sorted(nodes)]
        formers = [n for n in members if n.grid_forming and n.in_service and n.supply_capacity_kw > 0]
        former = max(formers, key=lambda n: (n.supply_capacity_kw, n.id)).id if formers else None
        return Island(
            nodes=frozenset(nodes),
            grid_former=former,
            load_kw=sum(n.load_kw for n in members if n.in_service),
            supply_capacity_kw=sum(n.supply_capacity_kw for n in members if n.in_service),
            stored_energy_kwh=sum(n.stored_energy_kwh for n in members if n.in_service),
        )

    def _components(self, opened: set[str], dead: set[str]) -> list[frozenset[str]]:
        seen: set[str] = set(dead)
        components = []
        for node in self.nodes:
            if node.id in seen:
                continue
            component = {node.id}
            queue = deque([node.id])
            seen.add(node.id)
            while queue:
                current = queue.popleft()
                for neighbour, edge_id in self._adjacency[current]:
                    if edge_id not in opened and neighbour not in seen:
                        seen.add(neighbour)
                        component.add(neighbour)
                        queue.append(neighbour)
            components.append(frozenset(component))
        return components


def graph_elements(grid: Microgrid | None = None) -> dict[str, list[dict]]:
    """Plain-data nodes and edges for drawing: exactly the graph the rules reason on.

    Nodes: id, name, kind, technology, position {x, y}, voltage_kv, rating_kw and the ratings and
    operating point in kW/kWh. Edges: id, name, source, target, kind, normally_open, length_km,
    rating_kva.
    """
    grid = grid or microgrid()
    nodes = []
    for n in grid.nodes:
        ratings = {
            "rated_generation_kw": n.rated_generation_kw, "rated_storage_kw": n.rated_storage_kw,
            "storage_kwh": n.storage_kwh, "rated_load_kw": n.rated_load_kw, "rated_kvar": n.rated_kvar,
        }
        if n.transformer:
            ratings.update(rated_kva=n.transformer.rated_kva, hv_kv=n.transformer.hv_kv,
                           lv_kv=n.transformer.lv_kv, shift_degree=n.transformer.shift_degree)
        if n.short_circuit_mva:
            ratings["short_circuit_mva"] = n.short_circuit_mva
        nodes.append({
            "id": n.id, "name": n.name, "label": n.name, "kind": n.kind, "technology": n.technology,
            "position": {"x": n.x, "y": n.y}, "voltage_kv": n.voltage_kv, "rating_kw": n.rating_kw,
            "ratings": {k: v for k, v in ratings.items() if v},
            "operating_point": {"generation_kw": n.generation_kw, "load_kw": n.load_kw,
                                "storage_kw": n.storage_kw, "state_of_charge": n.state_of_charge},
            "grid_forming": n.grid_forming, "dispatchable": n.dispatchable,
            "is_peer": n.id in PEERS, "is_sender": n.id in SENDERS, "is_receiver": n.id in RECEIVERS,
        })
    edges = []
    for e in grid.edges:
        voltage = grid.node(e.target).voltage_kv
        edges.append({
            "id": e.id, "name": e.name, "label": e.name, "source": e.source, "target": e.target, "kind": e.kind,
            "normally_open": e.normally_open, "length_km": e.length_km,
            "rating_kva": round(e.rating_kva(voltage), 1),
        })
    return {"nodes": nodes, "edges": edges}


@lru_cache(maxsize=1)
def default_graph() -> Mapping[str, list[dict]]:
    """`graph_elements` of the default microgrid, built once per process (read it, never change it)."""
    return graph_elements(microgrid())


def display_names(grid: Microgrid | None = None) -> dict[str, str]:
    """Node id -> the name people read ("prosumer-b" -> "Prosumer Beta"), peers and equipment alike."""
    grid = grid or microgrid()
    return {n.id: n.name for n in grid.nodes} | {e.id: e.name for e in grid.edges}


def peer_choices(grid: Microgrid | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(senders, receivers) as (id, display name) pairs, in the original interface's order."""
    names = display_names(grid)
    return [(peer, names[peer]) for peer in SENDERS], [(peer, names[peer]) for peer in RECEIVERS]


def transfer_path_edges(sender: str | None, receiver: str | None, grid: Microgrid | None = None) -> tuple[str, ...]:
    """Edge ids of the path a P2P transfer takes (`Microgrid.path`); () for a missing or unknown peer."""
    grid = grid or microgrid()
    if not sender or not receiver or sender == receiver or sender not in grid.node_by_id \
            or receiver not in grid.node_by_id:
        return ()
    return grid.path(sender, receiver)[1]


# --- the default microgrid -------------------------------------------------------------------------
_LV = 0.4
_MV = 20.0
# NAYY 4x150 SE low-voltage cable (pandapower standard type values)
_CABLE = {"r_ohm_per_km": 0.208, "x_ohm_per_km": 0.08, "c_nf_per_km": 261.0, "max_i_ka": 0.27}


def _line(edge_id: str, name: str, source: str, target: str, km: float) -> Edge:
    return Edge(edge_id, name, source, target, "line", length_km=km, **_CABLE)


def _breaker(edge_id: str, name: str, source: str, target: str, normally_open: bool = False) -> Edge:
    return Edge(edge_id, name, source, target, "breaker-switch", normally_open=normally_open)


def _build_default() -> Microgrid:
    nodes = (
        Node(UTILITY_GRID, "Utility grid (20 kV)", "utility", "Utility MV connection", 400, 0, _MV,
             short_circuit_mva=100.0),
        Node(ISPAR_SERIES, "ISPAR series unit", "transformer", "Phase angle regulator, series unit", 400, 90, _MV,
             transformer=TransformerData(_MV, _MV, 1000.0, 5.0, 0.5, 0.8, 0.2, shift_degree=5.0, vector_group="Dd0")),
        Node(ISPAR_EXCITING, "ISPAR exciting unit", "transformer", "Phase angle regulator, exciting unit", 580, 90,
             _MV, transformer=TransformerData(_MV, 6.0, 400.0, 4.0, 0.6, 0.6, 0.3, vector_group="YNyn0")),
        Node(MV_BUS, "MV substation bus", "bus", "20 kV busbar", 400, 180, _MV),
        Node(POWER_TRANSFORMER, "Power transformer", "transformer", "20/0.4 kV 630 kVA Dyn5", 280, 270, _LV,
             transformer=TransformerData(_MV, _LV, 630.0, 6.0, 1.206, 1.65, 0.2619, shift_degree=150.0)),
        Node(PARALLEL_TRANSFORMER, "Parallel transformer", "transformer", "20/0.4 kV 250 kVA Dyn5", 560, 270, _LV,
             transformer=TransformerData(_MV, _LV, 250.0, 4.0, 1.44, 0.8, 0.32, shift_degree=150.0)),
        Node(CONSUMER_LOAD, "Other loads", "load", "Aggregated other loads", 560, 380, _LV,
             rated_load_kw=100.0, load_kw=55.0),
        Node(MICROGRID_HUB, "Microgrid hub", "hub", "0.4 kV main busbar", 280, 380, _LV),
        Node(CAPACITOR_BANK, "Capacitor bank", "capacitor", "60 kvar power-factor correction", 80, 380, _LV,
             rated_kvar=60.0),
        Node(FEEDER_1, "Feeder 1 (residential)", "feeder", "LV feeder head", 100, 480, _LV),
        Node(FEEDER_2, "Feeder 2 (commercial)", "feeder", "LV feeder head", 280, 480, _LV),
        Node(FEEDER_3, "Feeder 3 (industrial)", "feeder", "LV feeder head", 460, 480, _LV),
        Node(PROSUMER_A, "Prosumer Alpha", "prosumer", "PV 40 kWp + battery 20 kW / 40 kWh", 100, 570, _LV,
             rated_generation_kw=40.0, rated_storage_kw=20.0, storage_kwh=40.0, rated_load_kw=15.0,
             generation_kw=28.0, load_kw=8.0, state_of_charge=0.6),
        Node(CONSUMER_HOME, "Consumer home", "load", "Residential homes", 100, 660, _LV,
             rated_load_kw=25.0, load_kw=12.0),
        Node(PROSUMER_B, "Prosumer Beta", "prosumer", "Small wind turbine 30 kW", 100, 750, _LV,
             rated_generation_kw=30.0, rated_load_kw=10.0, generation_kw=12.0, load_kw=5.0),
        Node(COMMUNITY_BATTERY, "Community battery", "storage", "Grid-forming battery 100 kW / 200 kWh", 280, 570,
             _LV, rated_storage_kw=100.0, storage_kwh=200.0, grid_forming=True, state_of_charge=0.7),
        Node(LOCAL_BUSINESS, "Local business", "load", "Shops and offices", 280, 660, _LV,
             rated_load_kw=50.0, load_kw=28.0, power_factor=0.9),
        Node(EV_HUB, "EV charging hub", "load", "4 x 22 kW chargers", 280, 750, _LV,
             rated_load_kw=88.0, load_kw=30.0, power_factor=0.98),
        Node(MICRO_INDUSTRY, "Micro-industry", "generation", "Co-generation 80 kW (synchronous) + process load",
             460, 570, _LV, rated_generation_kw=80.0, dispatchable=True, grid_forming=True, rated_load_kw=70.0,
             generation_kw=50.0, load_kw=45.0, power_factor=0.85),
        Node(NONLINEAR_LOAD, "Non-linear load", "load", "Variable-speed drives and rectifiers 40 kW", 460, 660, _LV,
             rated_load_kw=40.0, load_kw=20.0, power_factor=0.9),
    )
    edges = (
        _breaker(CB_ISPAR_SOURCE, "ISPAR source breaker", UTILITY_GRID, ISPAR_SERIES),
        Edge(ISPAR_EXCITATION, "ISPAR excitation connection", ISPAR_SERIES, ISPAR_EXCITING, "connection",
             source_port="hv", target_port="hv"),
        _breaker(CB_ISPAR_LOAD, "ISPAR load breaker", ISPAR_SERIES, MV_BUS),
        _breaker(ISPAR_BYPASS, "ISPAR bypass breaker (normally open)", UTILITY_GRID, MV_BUS, normally_open=True),
        _breaker(CB_PT_HV, "Power transformer HV breaker", MV_BUS, POWER_TRANSFORMER),
        _breaker(CB_PT_LV, "Power transformer LV breaker", POWER_TRANSFORMER, MICROGRID_HUB),
        _breaker(CB_PTX_HV, "Parallel transformer HV breaker", MV_BUS, PARALLEL_TRANSFORMER),
        _breaker(CB_PTX_LV, "Parallel transformer LV breaker", PARALLEL_TRANSFORMER, CONSUMER_LOAD),
        _breaker(CB_CAPACITOR, "Capacitor bank switch", MICROGRID_HUB, CAPACITOR_BANK),
        _breaker(CB_FEEDER_1, "Feeder 1 breaker", MICROGRID_HUB, FEEDER_1),
        _breaker(CB_FEEDER_2, "Feeder 2 breaker", MICROGRID_HUB, FEEDER_2),
        _breaker(CB_FEEDER_3, "Feeder 3 breaker", MICROGRID_HUB, FEEDER_3),
        _line("line-f1-1", "Feeder 1 cable, section 1", FEEDER_1, PROSUMER_A, 0.12),
        _line("line-f1-2", "Feeder 1 cable, section 2", PROSUMER_A, CONSUMER_HOME, 0.10),
        _line("line-f1-3", "Feeder 1 cable, section 3", CONSUMER_HOME, PROSUMER_B, 0.15),
        _line("line-f2-1", "Feeder 2 cable, section 1", FEEDER_2, COMMUNITY_BATTERY, 0.10),
        _line("line-f2-2", "Feeder 2 cable, section 2", COMMUNITY_BATTERY, LOCAL_BUSINESS, 0.12),
        _line("line-f2-3", "Feeder 2 cable, section 3", LOCAL_BUSINESS, EV_HUB, 0.15),
        _line("line-f3-1", "Feeder 3 cable, section 1", FEEDER_3, MICRO_INDUSTRY, 0.20),
        _line("line-f3-2", "Feeder 3 cable, section 2", MICRO_INDUSTRY, NONLINEAR_LOAD, 0.08),
    )
    return Microgrid(nodes, edges, pcc_edge=CB_PT_LV)


@lru_cache(maxsize=1)
def microgrid() -> Microgrid:
    """The default microgrid with the built-in tariffs (immutable; derive variants with `with_node`,
    `with_tariffs`: the app passes the configured tariffs as `microgrid().with_tariffs(...)`)."""
    return _build_default()
