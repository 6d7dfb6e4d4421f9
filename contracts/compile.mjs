// Compiles contracts/src and contracts/test-sources with the pinned solc-js into
// artifacts/<ContractName>.json (abi, bytecode, deployedBytecode, compiler version and settings).
//
//   node compile.mjs [--out DIR]     (default: artifacts/ next to this script)
//
// The output is deterministic (sorted keys, two-space indent, newline at the end), so the
// committed artifacts can be checked byte for byte against a fresh compile
// (tests/chain/test_artifacts.py). JSON files in the output directory that this compile did
// not produce are removed, so a renamed contract leaves no stale artifact behind.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import solc from "solc";

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCE_DIRS = ["src", "test-sources"];
const LIBRARY_PREFIX = "@openzeppelin/contracts/";
const TRANSIENT_SLOT = `${LIBRARY_PREFIX}utils/TransientSlot.sol`;

// Fixed for reproducible bytecode. Cancun: transient storage (EIP-1153) for the reentrancy
// guard; eth-tester (py-evm, Prague) and anvil both run it.
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "ipfs" },
};

function parseArgs(argv) {
  let out = join(HERE, "artifacts");
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === "--out" && i + 1 < argv.length) {
      out = resolve(argv[i + 1]);
      i += 1;
    } else {
      throw new Error(`unknown argument: ${argv[i]} (usage: node compile.mjs [--out DIR])`);
    }
  }
  return { out };
}

function checkCompilerPin() {
  const pkg = JSON.parse(readFileSync(join(HERE, "package.json"), "utf8"));
  const pinned = pkg.devDependencies.solc;
  const running = solc.version();
  if (!running.startsWith(`${pinned}+`)) {
    throw new Error(`solc-js ${running} is installed, package.json pins ${pinned}: run npm ci`);
  }
  return running;
}

function readSources() {
  const sources = {};
  for (const dir of SOURCE_DIRS) {
    for (const name of readdirSync(join(HERE, dir)).filter((n) => n.endsWith(".sol")).sort()) {
      const unit = `${dir}/${name}`;
      sources[unit] = { content: readFileSync(join(HERE, unit), "utf8") };
    }
  }
  return sources;
}

// Resolves only OpenZeppelin's imports, from node_modules; every other import must be one of
// our own sources (already in the input) or the compile fails.
function findImports(path) {
  const clean = normalize(path);
  if (!clean.startsWith(LIBRARY_PREFIX) || clean.includes("..")) {
    return { error: `import outside ${LIBRARY_PREFIX}: ${path}` };
  }
  const file = join(HERE, "node_modules", clean);
  if (!existsSync(file)) {
    return { error: `not found: ${path} (run npm ci in contracts/)` };
  }
  return { contents: readFileSync(file, "utf8") };
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  }
  return value;
}

function main() {
  const { out } = parseArgs(process.argv.slice(2));
  const version = checkCompilerPin();
  const sources = readSources();
  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  // solc warns about every tstore; OpenZeppelin's guard clears its slot at the end of each
  // call, which is the safe use that warning names, so that one warning is left out.
  const problems = (output.errors ?? []).filter(
    (p) => !(p.severity === "warning" && p.sourceLocation?.file === TRANSIENT_SLOT),
  );
  for (const p of problems) process.stderr.write(`${p.formattedMessage ?? p.message}\n`);
  if (problems.some((p) => p.severity === "error")) process.exit(1);

  mkdirSync(out, { recursive: true });
  const written = new Set();
  for (const unit of Object.keys(sources)) {
    for (const [name, contract] of Object.entries(output.contracts[unit] ?? {})) {
      if (!contract.evm.bytecode.object) continue; // abstract contracts and interfaces
      if (written.has(name)) throw new Error(`two contracts named ${name}`);
      const artifact = {
        contractName: name,
        sourceName: unit,
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
        compiler: { name: "solc-js", version, settings: SETTINGS },
      };
      writeFileSync(join(out, `${name}.json`), `${JSON.stringify(sortKeys(artifact), null, 2)}\n`);
      written.add(name);
    }
  }
  for (const file of readdirSync(out)) {
    if (file.endsWith(".json") && !written.has(file.slice(0, -".json".length))) {
      rmSync(join(out, file));
    }
  }
  process.stdout.write(`compiled ${written.size} contracts with solc ${version} into ${out}\n`);
}

main();
