// Float16 decoding: the one place the client turns IEEE half-precision bytes into numbers.
// Every float16 value is exactly representable as a float32, so decoding loses nothing.

let HALF_TABLE = null; // Float32Array(65536): every float16 bit pattern → its float32 value

/** The float32 value of one float16 bit pattern `h` (0 … 65535). */
export function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x03ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function halfTable() {
  if (HALF_TABLE === null) {
    HALF_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF_TABLE[h] = halfToFloat(h);
  }
  return HALF_TABLE;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decode little-endian IEEE float16 values (an ArrayBuffer or a view of one) into a Float32Array.
 * Throws on an odd byte count.
 */
export function float16ToFloat32(bufferOrView) {
  const bytes =
    bufferOrView instanceof ArrayBuffer
      ? new Uint8Array(bufferOrView)
      : new Uint8Array(bufferOrView.buffer, bufferOrView.byteOffset, bufferOrView.byteLength);
  if (bytes.byteLength % 2 !== 0) throw new Error("float16 data has an odd number of bytes.");
  const count = bytes.byteLength / 2;
  const table = halfTable();
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 2 === 0) {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = table[halves[i]];
  } else {
    for (let i = 0; i < count; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  }
  return out;
}

/** The bytes of a base64 string (whitespace ignored). */
export function base64Bytes(text) {
  const binaryString = atob(String(text).replace(/\s+/g, ""));
  const bytes = new Uint8Array(binaryString.length);
  for (let i = 0; i < binaryString.length; i++) bytes[i] = binaryString.charCodeAt(i);
  return bytes;
}
