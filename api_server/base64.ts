// Base64 of UTF-8 text (btoa only takes Latin-1), for HTTP basic authentication headers.

/** Base64-encodes the UTF-8 bytes of `s`. */
export function encodeBase64(s: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}
