// The Errors (PROTOCOL.md "Error") the client makes up itself, for requests
// that never reached the host or got no answer from it.

export function offlineError() {
  return {
    code: "protocol.offline",
    category: "protocol",
    severity: "info",
    message: "Not connected to the host.",
    hint: "It will be done when the connection is back.",
    recoverable: true,
  };
}

/** No ack within the deadline while the socket stayed up: the request is tried again. */
export function timeoutError() {
  return { ...offlineError(), code: "protocol.timeout", message: "The host did not answer in time." };
}
