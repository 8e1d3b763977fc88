// The managed ETL task's "add suffix" template in JavaScript, with the same
// output as the Rust etl-compat plugin: the suffix bytes are appended to the
// raw key and value bytes, a null key or value stays null, and a record
// with neither is kept.
const encoder = new TextEncoder();
const KEY_SUFFIX = encoder.encode("KeySurfix");
const VALUE_SUFFIX = encoder.encode("ValueSurfix");

function append(bytes, suffix) {
  if (bytes === undefined) {
    return undefined;
  }
  const out = new Uint8Array(bytes.length + suffix.length);
  out.set(bytes, 0);
  out.set(suffix, bytes.length);
  return out;
}

// Called once with the [[transform]] config as [key, value] pairs; throwing refuses it.
export function init(config) {
  if (config.length > 0) {
    throw `unknown config key \`${config[0][0]}\`: this plugin takes none`;
  }
}

// One outcome per record: {tag: "keep" | "drop"}, {tag: "replace", val: [records]}
// or {tag: "fail", val: reason}. Keys and values are Uint8Array or undefined.
export function transform(batch) {
  return batch.map((record) => {
    if (record.key === undefined && record.value === undefined) {
      return { tag: "keep" };
    }
    const changed = {
      ...record,
      key: append(record.key, KEY_SUFFIX),
      value: append(record.value, VALUE_SUFFIX),
    };
    return { tag: "replace", val: [changed] };
  });
}
