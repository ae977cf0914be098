// Formulas too wide for their box scroll inside it. Phones hide scrollbars, so each such box says
// which of its sides has more to see (data-more="left right"): the stylesheet fades the formula out
// on those sides. Without scripts the box keeps its CSS edge shadows.
(function () {
  "use strict";
  var boxes = Array.prototype.slice.call(document.querySelectorAll(".math.block, .math.inline"));
  if (!boxes.length) return;

  function mark(box) {
    var more = [];
    var room = box.scrollWidth - box.clientWidth;
    if (room > 1) {
      if (box.scrollLeft > 1) more.push("left");
      if (box.scrollLeft < room - 1) more.push("right");
    }
    if (more.length) box.setAttribute("data-more", more.join(" "));
    else box.removeAttribute("data-more");
    // a display formula is always focusable (the builder says so); an inline one only while it
    // scrolls, so that the keyboard can scroll it without a tab stop at every small formula
    if (box.classList.contains("inline")) {
      if (room > 1) box.setAttribute("tabindex", "0");
      else box.removeAttribute("tabindex");
    }
  }

  boxes.forEach(function (box) {
    box.addEventListener("scroll", function () { mark(box); }, { passive: true });
    mark(box);
  });
  var pending = false;
  window.addEventListener("resize", function () {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; boxes.forEach(mark); });
  });
})();
