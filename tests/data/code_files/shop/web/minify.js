// Tiny helpers to shorten CSS before inlining it; the output is never committed.
export function minifyCss(source) {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\s+/g, " ")
    .replace(/\s*([{};:,])\s*/g, "$1")
    .trim();
}

export function sizeSaved(before, after) {
  return before.length - after.length;
}
