// Copy buttons: each `button.copy` copies the text of the element its data-copy-from names.
// The buttons stay hidden without scripts; the text is still there to select by hand.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button.copy[data-copy-from]");
  if (!buttons.length) return;

  var status = document.createElement("p");  // one live region announces each copy
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  document.body.appendChild(status);

  function withTextarea(text) {  // where the async clipboard is missing or refused (e.g. file:// pages)
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    document.body.removeChild(area);
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return withTextarea(text); });
    }
    return withTextarea(text);
  }

  Array.prototype.forEach.call(buttons, function (button) {
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source) return;
    var label = button.firstChild;  // the visible word; the rest of the name is visually hidden
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.textContent.replace(/\n$/, "");
      copy(text).then(function () {
        label.nodeValue = "Copied";
        status.textContent = "Copied to the clipboard";
        button.setAttribute("data-copied", "true");
      }, function () {
        label.nodeValue = "Select and copy";
        status.textContent = "Copying is blocked here: select the text and copy it";
        button.setAttribute("data-copied", "false");
      });
      window.setTimeout(function () { label.nodeValue = "Copy"; }, 2000);
    });
  });
})();
