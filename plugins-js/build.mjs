// Builds a JavaScript module into an fcsink plugin with componentize-js:
//   node build.mjs add_suffix.js add_suffix.wasm
// The module exports `init(config)` and `transform(batch)` as wit/transform.wit says.
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [source, output] = process.argv.slice(2);
if (!source || !output) {
  console.error("usage: node build.mjs SOURCE.js OUTPUT.wasm");
  process.exit(2);
}
const { component } = await componentize({
  sourcePath: resolve(source),
  witPath: join(dirname(fileURLToPath(import.meta.url)), "..", "wit"),
  worldName: "transformer",
  // fcsink links WASI without HTTP; stdio (the log), clocks and random stay.
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(output, component);
