/** Rows describing a zod object's keys (name, type, default, description), for docs and `doctor-agent steps`. */
import { z } from 'zod';

export interface FieldRow {
  name: string;
  type: string;
  required: boolean;
  default?: string;
  description: string;
}

type Json = Record<string, any>;

export function toJson(schema: z.ZodType): Json {
  return z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as Json;
}

/** A short type name for a JSON Schema node: string, integer, "a" | "b", list of string, ... */
export function typeOf(s: Json): string {
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v: unknown) => JSON.stringify(v)).join(' | ');
  const alts = s.anyOf ?? s.oneOf;
  if (alts) {
    const objects = alts.filter((a: Json) => a.properties?.type?.const !== undefined);
    if (objects.length === alts.length) return `mapping (type: ${objects.map((a: Json) => a.properties.type.const).join(' | ')})`;
    return [...new Set(alts.map(typeOf))].join(' | ');
  }
  if (Array.isArray(s.type)) return s.type.join(' | ');
  if (s.type === 'string' && s.pattern?.includes('ms|s|m|h|d')) return 'duration';
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object') return s.properties ? 'mapping' : `mapping of ${s.additionalProperties ? typeOf(s.additionalProperties) : 'any'}`;
  return s.type ?? 'any';
}

/** One row per key; nested mappings (and each variant of a tagged union) add dotted rows. */
export function fieldRows(schema: z.ZodType): FieldRow[] {
  const rows: FieldRow[] = [];
  const walk = (node: Json, prefix: string, note: string) => {
    const required = new Set<string>(node.required ?? []);
    for (const [key, prop] of Object.entries<Json>(node.properties ?? {})) {
      const name = prefix + key;
      rows.push({
        name,
        type: typeOf(prop),
        required: required.has(key) && prop.default === undefined,
        default: prop.default === undefined ? undefined : JSON.stringify(prop.default),
        description: note + (prop.description ?? ''),
      });
      if (prop.type === 'object' && prop.properties) walk(prop, `${name}.`, '');
      for (const alt of prop.oneOf ?? prop.anyOf ?? []) {
        const tag = alt.properties?.type?.const;
        if (tag !== undefined) {
          const { type: _omit, ...rest } = alt.properties;
          walk({ ...alt, properties: rest }, `${name}.`, `(type: ${tag}) `);
        }
      }
    }
  };
  walk(toJson(schema), '', '');
  return rows;
}
