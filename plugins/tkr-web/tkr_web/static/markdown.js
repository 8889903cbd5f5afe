// Markdown → safe DOM: marked renders, DOMPurify removes anything that could
// run (event handlers, javascript: URLs, <script>, <iframe>…). Links open in
// a new tab without giving it a handle on this page.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (char) => ESCAPES[char]);

export function makeRenderer(marked, DOMPurify) {
  const purify = DOMPurify(window);
  purify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A" && node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
  // Raw HTML in a message is shown as text, as chat users expect, rather than
  // parsed and then stripped: that way no event handler ever reaches a
  // parser that would report it to the CSP.
  const parser = new marked.Marked({ gfm: true, breaks: true, async: false, renderer: { html: ({ text }) => escapeHtml(text) } });

  /** @param {string} text @param {"markdown"|"plain"} [format] @returns {DocumentFragment} */
  return function render(text, format = "markdown") {
    const fragment = document.createDocumentFragment();
    if (format === "plain") {
      const paragraph = document.createElement("p");
      paragraph.textContent = text;
      fragment.append(paragraph);
      return fragment;
    }
    const clean = purify.sanitize(parser.parse(String(text)), {
      RETURN_DOM_FRAGMENT: true,
      FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select"],
      FORBID_ATTR: ["style"],
    });
    fragment.append(clean);
    return fragment;
  };
}
