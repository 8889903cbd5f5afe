// tkr-poll's renderer for the web chat (tkr-web's `web_renderers` hook; see
// docs/web.md). A poll's `open` message is drawn as a card with one button
// per option and the tally so far; `vote` messages are counted there and not
// drawn on their own. A member's first vote (lowest seq) is the one that
// counts, as the plugin's README says.

export default function render(message, api) {
  const { h } = api;
  const poll = message.payload ?? {};
  if (poll.action !== "open") return null;
  const voters = new Map();
  for (const other of api.messages()) {
    const vote = other.payload ?? {};
    if (other.type === "poll" && vote.action === "vote" && vote.poll_id === poll.poll_id && other.seq > message.seq && !voters.has(other.sender?.id)) {
      voters.set(other.sender?.id, vote.option);
    }
  }
  const counts = poll.options.map((_, index) => [...voters.values()].filter((option) => option === index).length);
  const mine = voters.get(api.me);
  const total = voters.size;
  const buttons = poll.options.map((option, index) => {
    const share = total ? Math.round((counts[index] / total) * 100) : 0;
    const button = h(
      "button",
      {
        className: "choice poll-option",
        type: "button",
        disabled: mine !== undefined,
        dataset: { index: String(index), voted: mine === index ? "true" : "false" },
        attrs: { "aria-pressed": String(mine === index), "aria-label": `${option}: ${counts[index]} ${counts[index] === 1 ? "vote" : "votes"}` },
        onclick: (event) => {
          for (const sibling of event.currentTarget.parentElement.parentElement.querySelectorAll("button")) sibling.disabled = true;
          event.currentTarget.dataset.pending = "true";
          void api.send({ action: "vote", poll_id: poll.poll_id, option: index });
        },
      },
      h("span", { className: "choice-bar", attrs: { "aria-hidden": "true" } }),
      h("span", { className: "choice-label" }, option),
      h("span", { className: "choice-count poll-count" }, String(counts[index])),
    );
    button.style.setProperty("--share", `${share}%`);
    return h("li", {}, button);
  });
  return h(
    "div",
    { className: "choice-card poll-card" },
    h("div", { className: "choice-kind" }, "Poll"),
    h("div", { className: "choice-question" }, poll.question),
    h("ul", { className: "choices" }, buttons),
    h("div", { className: "choice-footer" }, `${total} ${total === 1 ? "vote" : "votes"}${mine !== undefined ? " · you voted" : " · tap an option to vote"}`),
  );
}
