import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import {
  parseSamples,
  readSamples,
  type SampleProblem,
  SamplesError,
} from "../../src/contract/samples.js";
import type { TurnoutError } from "../../src/errors.js";
import { tempDir } from "../helpers/temp-dir.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

function problemsOf(fn: () => unknown): readonly SampleProblem[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof SamplesError) return error.problems;
    throw error;
  }
  throw new Error("expected a SamplesError");
}

t.test("valid lines become samples; blank lines and # comments are skipped", async (t) => {
  const samples = readSamples(join(FIXTURES, "good.jsonl"));
  t.same(
    samples.map((s) => s.line),
    [3, 5, 6],
    "lines numbered as in the file",
  );
  const [get, post, del] = samples;
  t.equal(get?.method, "GET", "the method is upper-cased");
  t.equal(get?.path, "/v1/regions/eu/users/u-1?fields=email", "the query string is kept");
  t.same(get?.headers, { "x-user-id": "u-1" }, "header names lower-cased");
  t.equal(get?.body, undefined, "no body field: no request body");
  t.equal(
    get?.response,
    '{"id":"u-1","balance_cents":12345678901234567890}',
    "an int64 past 2^53 is kept exact in the recorded response",
  );
  t.equal(post?.body, '{"order":{"id":"o-1"}}');
  t.equal(post?.status, 201);
  t.equal(del?.response, undefined, "no response field: an empty body is expected");
});

t.test("every bad line is reported at once, with its line and the field at fault", async (t) => {
  const file = join(FIXTURES, "bad.jsonl");
  const problems = problemsOf(() => readSamples(file));
  const lines = problems.map((p) => `${p.line} ${p.field ?? "-"}`);
  t.same(lines, [
    "3 -",
    "4 status",
    "6 respnse",
    "6 method",
    "7 method",
    "7 path",
    "7 headers.x-user-id",
    "8 -",
  ]);
  let message = "";
  try {
    readSamples(file);
  } catch (error) {
    message = (error as Error).message;
    t.equal((error as TurnoutError).code, "TURNOUT_ERR_BAD_SAMPLES");
  }
  t.match(message, `${file}:3: invalid JSON`);
  t.match(
    message,
    `${file}:4: status: must be an HTTP status, a whole number from 100 to 599, got "200"`,
  );
  t.match(message, `${file}:6: respnse: unknown field (did you mean "response"?)`);
  t.match(message, `${file}:6: method: missing`);
  t.match(
    message,
    `${file}:7: method: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, got "FETCH"`,
  );
  t.match(message, `${file}:7: path: must start with /`);
  t.match(message, `${file}:7: headers.x-user-id: must be a string, got 7`);
  t.match(message, `${file}:8: must be a JSON object`);
});

t.test("a status outside 100-599 or a fraction is refused", async (t) => {
  for (const status of ["99", "600", "200.5", "null"]) {
    const problems = problemsOf(() =>
      parseSamples(`{"method":"GET","path":"/a","status":${status}}`, "s.jsonl"),
    );
    t.same(
      problems.map((p) => p.field),
      ["status"],
      `status ${status}`,
    );
  }
});

t.test("a file with only comments holds no sample: that is an error, not a pass", async (t) => {
  const problems = problemsOf(() => parseSamples("# nothing recorded yet\n\n", "empty.jsonl"));
  t.equal(problems.length, 1);
  t.match(problems[0]?.message, /holds no sample/);
});

t.test("an unreadable file is a TURNOUT_ERR_SAMPLES_UNREADABLE naming the file", async (t) => {
  const missing = join(tmpdir(), "turnout-no-such-samples.jsonl");
  t.throws(() => readSamples(missing), {
    code: "TURNOUT_ERR_SAMPLES_UNREADABLE",
    message: new RegExp(`cannot read ${missing.replace(/[.]/g, "\\.")}: ENOENT`),
  });
});

t.test("a body of any JSON value, null included, is sent as written", async (t) => {
  const file = join(tempDir("turnout-samples"), "samples.jsonl");
  writeFileSync(file, '{"method":"PUT","path":"/a","body":null,"status":200,"response":[1,"x"]}\n');
  const [sample] = readSamples(file);
  t.equal(sample?.body, "null", "an explicit null body is sent, not dropped");
  t.equal(sample?.response, '[1,"x"]');
});
