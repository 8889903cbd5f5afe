// Who the client is, as far as the page needs to know: the principal a JWT
// names (for showing "you"), and whose entries in a shared outbox are ours.

/** The principal a JWT names (unverified: only for showing "you"), or null for an API key. */
export function principalFromToken(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  try {
    const bytes = Uint8Array.from(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/")), (char) => char.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims.sub === "string" ? { id: claims.sub, kind: claims.kind ?? "user", name: claims.name ?? claims.sub, exp: claims.exp } : null;
  } catch {
    return null;
  }
}

/**
 * Whose entries in a shared outbox: the host and the principal a JWT names, or
 * for an API key (which names nobody) a SHA-256 of the key, so that no part of
 * a credential is ever written to IndexedDB.
 */
export async function queueOwnerFor(url, token) {
  const base = url.replace(/\/$/, "");
  const principal = principalFromToken(token);
  if (principal) return `${base}|${principal.id}`;
  const digest = await globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(String(token)));
  return `${base}|sha256:${[...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}
