// Markdown → safe DOM: marked renders, DOMPurify removes anything that could
// run (event handlers, javascript: URLs, <script>, <iframe>…). Links open in
// a new tab without giving it a handle on this page.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (char) => ESCAPES[char]);

/**
 * Whether an image URL is one the page may load: the page's own origin, or a
 * source the operator allowed (`[plugins.web] img_src`: scheme sources such
 * as `https:`, or origins such as `https://cdn.example.com`).
 */
export function imageAllowed(src, allowed = [], base = location.href) {
  let url;
  try {
    url = new URL(src, base);
  } catch {
    return false;
  }
  if (url.protocol !== "data:" && url.origin === new URL(base).origin) return true;
  return allowed.some((source) => {
    if (/^[a-z][a-z0-9+.-]*:$/i.test(source)) return url.protocol === source.toLowerCase();
    try {
      const origin = new URL(source);
      return url.origin === origin.origin && url.pathname.startsWith(origin.pathname);
    } catch {
      return false;
    }
  });
}

/**
 * An image from elsewhere would load by itself and tell its server who reads
 * the conversation: it becomes a link the reader may choose to open.
 */
function linkInsteadOfImage(image) {
  const label = `[image: ${image.getAttribute("alt") || image.getAttribute("title") || "image"}]`;
  let url = null;
  try {
    url = new URL(image.getAttribute("src") ?? "", location.href);
  } catch {
    url = null;
  }
  if (url && (url.protocol === "https:" || url.protocol === "http:")) {
    const link = document.createElement("a");
    link.href = url.href;
    link.className = "remote-image";
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    link.textContent = label;
    image.replaceWith(link);
  } else {
    image.replaceWith(document.createTextNode(label));
  }
}

export function makeRenderer(marked, DOMPurify, { imgSrc = [] } = {}) {
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
    for (const image of clean.querySelectorAll("img")) if (!imageAllowed(image.getAttribute("src") ?? "", imgSrc)) linkInsteadOfImage(image);
    fragment.append(clean);
    return fragment;
  };
}
