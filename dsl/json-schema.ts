/**
 * The JSON Schema of the pipeline language (schema/pipeline.schema.json), built from the same zod
 * schemas the compiler uses, so editors with the YAML language server complete and check pipelines.
 * Each step's `with` is checked by its kind's schema; any value may also be a `${{ }}` expression.
 */
import { toJson } from './describe.ts';
import { allKinds } from './kinds/index.ts';
import { PipelineSpec } from './schema.ts';

type Json = Record<string, any>;

const EXPRESSION = { type: 'string', pattern: '\\$\\{\\{', description: 'A ${{ }} expression.' };

/** Lets every value below the top also be an expression string (strings already are). */
function allowExpressions(node: Json): Json {
  const out: Json = { ...node };
  if (out.properties) {
    out.properties = Object.fromEntries(Object.entries<Json>(out.properties).map(([k, v]) => [k, orExpression(allowExpressions(v))]));
  }
  if (out.items) out.items = orExpression(allowExpressions(out.items));
  if (out.additionalProperties && typeof out.additionalProperties === 'object') {
    out.additionalProperties = orExpression(allowExpressions(out.additionalProperties));
  }
  for (const key of ['anyOf', 'oneOf'] as const) if (out[key]) out[key] = out[key].map(allowExpressions);
  return out;
}

function orExpression(node: Json): Json {
  if ((node.type === 'string' && !node.enum) || node.const !== undefined) return node;
  const { description, default: dflt, ...rest } = node;
  return { ...(description ? { description } : {}), ...(dflt !== undefined ? { default: dflt } : {}), anyOf: [rest, EXPRESSION] };
}

export function pipelineJsonSchema(): Json {
  const root = toJson(PipelineSpec);
  const kinds = allKinds();
  const step = root.properties.steps.items;
  step.properties.uses = { ...step.properties.uses, enum: kinds.map((k) => k.name) };
  step.allOf = kinds.map((k) => {
    const { $schema: _omit, ...params } = toJson(k.params);
    return {
      if: { properties: { uses: { const: k.name } }, required: ['uses'] },
      then: { properties: { with: { ...allowExpressions(params), description: `${k.name}: ${k.description}` } } },
    };
  });
  return {
    $schema: root.$schema,
    title: 'Doctor-Agent pipeline',
    ...root,
  };
}
