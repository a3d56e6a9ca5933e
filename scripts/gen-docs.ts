/** Writes docs/pipeline-language.md and schema/pipeline.schema.json from the language's zod schemas. */
import { writeFileAtomic } from '../common/fs.ts';
import { pipelineLanguageMarkdown } from '../dsl/docs.ts';
import { pipelineJsonSchema } from '../dsl/json-schema.ts';

const root = new URL('..', import.meta.url).pathname;
writeFileAtomic(`${root}docs/pipeline-language.md`, pipelineLanguageMarkdown());
writeFileAtomic(`${root}schema/pipeline.schema.json`, JSON.stringify(pipelineJsonSchema(), null, 2) + '\n');
console.log('wrote docs/pipeline-language.md and schema/pipeline.schema.json');
