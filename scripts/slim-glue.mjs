// Shrinks a trunk build in place (dist/ or dist-console/): the names the wasm
// and its wasm-bindgen glue call each other by, and the glue's own text.
//
//   node scripts/slim-glue.mjs DIST
//
// wasm-bindgen names every import after its Rust path and a 16-digit hash
// (`__wbg_instanceof_Response_5b0b4f7f1daeae51`) and the closure shims after
// their whole type; the panel has about 150 of them, written once in the
// wasm and once in the glue, and the hashes do not compress. Binaryen's own
// pass renames them to one or two letters and prints what it renamed; the
// glue is rewritten to match, every name checked, then minified by terser.
// The panel's download is about 5 KB gzip smaller (scripts/size-report).
// Any name that cannot be matched stops the build: a panel whose glue and
// wasm disagree would not start.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// terser lives with the other pinned build tools in .tools/ (scripts/tools.sh).
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { minify } = createRequire(join(root, ".tools", "package.json"))("terser");

const dist = process.argv[2];
if (!dist) throw new Error("usage: node scripts/slim-glue.mjs DIST");
const files = readdirSync(dist);
const wasmFile = files.find((f) => f.endsWith("_bg.wasm"));
if (!wasmFile) throw new Error(`${dist}: no *_bg.wasm (run trunk build first)`);
const jsFile = wasmFile.replace(/_bg\.wasm$/, ".js");
if (!files.includes(jsFile)) throw new Error(`${dist}: ${jsFile} is missing`);

const wasmPath = join(dist, wasmFile);
const jsPath = join(dist, jsFile);
let js = readFileSync(jsPath, "utf8");
if (js.includes("/* slimmed */")) {
  console.log(`${dist}: already slimmed`);
  process.exit(0);
}

const modulesOf = (path) =>
  [...new Set(WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(path))).map((i) => i.module))];
const [fromModule, ...others] = modulesOf(wasmPath);
if (others.length) throw new Error(`${wasmFile}: imports from several modules (${[fromModule, ...others]}); one expected`);

// Renames in place; prints {"imports": [[module, old, new]], "exports": [[old, new]]}.
const printed = execFileSync(
  "wasm-opt",
  [wasmPath, "--minify-imports-and-exports-and-modules", "-o", wasmPath],
  { encoding: "utf8" },
);
const map = JSON.parse(printed.slice(printed.indexOf("{")));
const [toModule] = modulesOf(wasmPath);

// A name or file name as a regular expression matches it literally.
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
function replaceOnce(pattern, by, what) {
  let count = 0;
  js = js.replace(pattern, (...m) => (count++, by(...m)));
  if (count !== 1) throw new Error(`${jsFile}: ${what} found ${count} times in the glue, not once`);
}
// Imports are the keys of the glue's import object: `name: function(...)`.
for (const [, from, to] of map.imports) {
  replaceOnce(
    new RegExp(`(^|[\\s,{])${escape(from)}(?=\\s*:)`, "g"),
    (_, before) => `${before}${JSON.stringify(to)}`,
    `import ${from}`,
  );
}
// The import object's one module.
replaceOnce(
  new RegExp(`${escape(JSON.stringify(fromModule))}(?=\\s*:)`, "g"),
  () => JSON.stringify(toModule),
  `module ${fromModule}`,
);
// Exports are read as `wasm.name`; an export the glue never reads (the
// start function's internals) needs nothing.
const reads = (name, flags) => new RegExp(`\\bwasm\\.${escape(name)}\\b(?![$])`, flags);
for (const [from, to] of map.exports) {
  // A function, so a `$` in the new name is taken literally.
  js = js.replace(reads(from, "g"), () => `wasm.${to}`);
}
for (const [from] of map.exports) {
  if (reads(from).test(js)) {
    throw new Error(`${jsFile}: export ${from} still read by its old name`);
  }
}

const out = await minify(js, { module: true, compress: { passes: 2 }, mangle: true });
writeFileSync(jsPath, `/* slimmed */${out.code}`);

// Trunk's page names both files with their hashes for subresource
// integrity: write the new ones.
const indexPath = join(dist, "index.html");
if (files.includes("index.html")) {
  let page = readFileSync(indexPath, "utf8");
  for (const [name, path] of [[jsFile, jsPath], [wasmFile, wasmPath]]) {
    const sri = "sha384-" + createHash("sha384").update(readFileSync(path)).digest("base64");
    page = page.replace(
      new RegExp(`(${escape(name)}"[^>]*integrity=")[^"]*`),
      `$1${sri}`,
    );
  }
  writeFileSync(indexPath, page);
}
console.log(`${dist}: ${map.imports.length} imports and ${map.exports.length} exports renamed, glue minified`);
