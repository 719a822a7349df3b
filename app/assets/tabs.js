/* Grid Event Monitor: arrow keys move between the tabs of a role="tablist" and open the tab reached
   (the keyboard pattern of the WAI-ARIA Authoring Practices for tabs; TAB, ENTER and SPACE work as
   for any button). Served locally from app/assets with the rest of the dashboard. */
document.addEventListener("keydown", function (event) {
  var tab = event.target && event.target.closest ? event.target.closest('[role="tab"]') : null;
  var list = tab ? tab.closest('[role="tablist"]') : null;
  if (!list) { return; }
  var tabs = Array.prototype.slice.call(list.querySelectorAll('[role="tab"]'));
  var index = tabs.indexOf(tab);
  if (event.key === "ArrowRight") { index = (index + 1) % tabs.length; }
  else if (event.key === "ArrowLeft") { index = (index - 1 + tabs.length) % tabs.length; }
  else if (event.key === "Home") { index = 0; }
  else if (event.key === "End") { index = tabs.length - 1; }
  else { return; }
  event.preventDefault();
  tabs[index].focus();
  tabs[index].click();
});
