// Hookhub portal: small conveniences on top of pages that work without them.
// Served by the hub itself; the CSP allows no other script and no inline code.
"use strict";
document.addEventListener("click", function (e) {
  var button = e.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});
// Forms that destroy or replace something ask first.
document.addEventListener("submit", function (e) {
  var question = e.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) e.preventDefault();
});
