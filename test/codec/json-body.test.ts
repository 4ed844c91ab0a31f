import { isLosslessNumber } from "lossless-json";
import t from "tap";
import { parseJsonBody } from "../../src/codec/index.js";
import { hasExponentNumber, hasLongNumberRun } from "../../src/codec/json-body.js";
import { caught } from "./fixtures/setup.js";

t.test("parseJsonBody returns what JSON.parse returns for ordinary bodies", async (t) => {
  const text = '{"a":1,"b":[true,null,"x"],"c":{"d":-2.5e3},"e":9007199254740991}';
  t.same(parseJsonBody(text), JSON.parse(text));
});

t.test("an integer past 2^53 comes back exact as a LosslessNumber, not rounded", async (t) => {
  const body = parseJsonBody('{"id": 9007199254740993, "small": 7}') as Record<string, unknown>;
  t.ok(isLosslessNumber(body.id), "big integer kept as LosslessNumber");
  t.equal((body.id as { value: string }).value, "9007199254740993");
  t.equal(body.small, 7, "safe numbers stay plain numbers");
});

t.test("a 20-digit integer is kept digit for digit", async (t) => {
  const body = parseJsonBody("[12345678901234567890123]") as unknown[];
  t.equal((body[0] as { value: string }).value, "12345678901234567890123");
});

t.test("a long digit run inside a string changes nothing in the result", async (t) => {
  const text = '{"card":"4111111111111111111","n":1.5}';
  t.same(parseJsonBody(text), { card: "4111111111111111111", n: 1.5 });
});

t.test("invalid JSON is TURNOUT_ERR_BAD_JSON with the position in the message", async (t) => {
  for (const text of ['{"a":}', '{"a":1,}', "[1,2", "", '{"a": 12345678901234567890,}']) {
    const error = caught(() => parseJsonBody(text));
    t.equal(error.code, "TURNOUT_ERR_BAD_JSON", text);
    t.equal(error.status, 400);
    t.match(error.message, /position \d+|end of JSON input/, `${text}: ${error.message}`);
  }
});

t.test("hasLongNumberRun agrees with /[\\d.]{16}/ on every position and length", async (t) => {
  let disagreements = 0;
  for (let length = 0; length < 70; length++) {
    for (let start = 0; start + length <= 70; start += 3) {
      for (const before of ["", "1", ".", "x"]) {
        const run = "7".repeat(length).replace(/^(.{5})7/, "$1.");
        const text = `${"a".repeat(start)}${before}${run}b${"9".repeat(length % 17)}`;
        if (hasLongNumberRun(text) !== /[\d.]{16}/.test(text)) disagreements++;
      }
    }
  }
  t.equal(disagreements, 0);
  t.equal(hasLongNumberRun("123456789012345"), false, "15 digits are not a trigger");
  t.equal(hasLongNumberRun("1234567890123456"), true, "16 digits are");
  t.equal(hasLongNumberRun("99999999.9999999"), true, "so are 16 digits and dots");
});

t.test("hasExponentNumber finds exponents in numbers, not in strings", async (t) => {
  t.equal(hasExponentNumber('{"a":1e2}'), true);
  t.equal(hasExponentNumber('{"a":[0, -2.5E-3]}'), true);
  t.equal(hasExponentNumber('{"id":"123e4567-e89b-12d3","n":1}'), false, "a UUID in a string");
  t.equal(hasExponentNumber('{"k\\"1e5":"x\\"2e3"}'), false, "escaped quotes stay in the string");
  t.equal(hasExponentNumber('{"a":"x","b":3e1}'), true);
});

t.test("numbers JSON.parse would round to an integer come back exact", async (t) => {
  for (const text of ["1e-400", "99999999.999999999", "45035996273704.965e2"]) {
    const value = parseJsonBody(`[${text}]`) as unknown[];
    t.ok(isLosslessNumber(value[0]), text);
  }
  t.same(parseJsonBody('{"a":1e2,"b":-2.5e-3}'), { a: 100, b: -0.0025 }, "exact ones stay numbers");
});

t.test("a key given twice in one object is a 400 naming it, on either parse path", async (t) => {
  const cases: Array<[string, string]> = [
    ['{"a":1,"a":2}', "a"],
    ['{"a":1,"a":1}', "a"],
    ['{"x":[{"k":true},{"c":1,"c":null}]}', "c"],
    ['{"q\\"":1, "q\\"" :2}', 'q\\"'],
    ['{"a":12345678901234567890,"a":1}', "a"],
    ['{"id":"123e4567","n":1e2,"n":3}', "n"],
  ];
  for (const [text, key] of cases) {
    const error = caught(() => parseJsonBody(text));
    t.equal(error.code, "TURNOUT_ERR_BAD_JSON", text);
    t.match(error.message, /is given twice in one object/, text);
    t.ok(error.message.includes(key), `${text}: names ${key}`);
  }
});

t.test("a key given twice is named with its JSON path in `field`", async (t) => {
  const cases: Array<[string, string]> = [
    ['{"a":1,"a":2}', "$.a"],
    ['{"x":[{"k":true},{"c":1,"c":null}]}', "$.x[1].c"],
    ['{"a":["x,y",{"b":1,"b":2}]}', "$.a[1].b"],
    ['{"user":{"tags":[],"n":{"a":1},"name":"x","name":"y"}}', "$.user.name"],
    ['{"q\\"":{"odd key":1,"odd key":2}}', '$["q\\""]["odd key"]'],
    ['[{"a":1},[{"b":1,"b":2}]]', "$[1][0].b"],
  ];
  for (const [text, field] of cases) {
    const error = caught(() => parseJsonBody(text));
    t.equal(error.field, field, text);
    t.ok(error.message.includes(`(${field})`), `${text}: the message names it too`);
  }
});

t.test(
  "a key given twice in a body parsed losslessly (a long digit run or an exponent) is the same 400 with its path",
  async (t) => {
    const cases: Array<[string, string]> = [
      ['{"inner":{"name":"a","name":"b"}', "$.inner.name"],
      ['{"a":{"x":1},"a":{"x":2}', "$.a"],
      ['{"x":[{"k":true},{"c":1,"c":null}]', "$.x[1].c"],
      ['{"q\\"":{"odd key":1,"odd key":2}', '$["q\\""]["odd key"]'],
    ];
    for (const [object, field] of cases) {
      const plain = caught(() => parseJsonBody(`${object}}`));
      for (const tail of [',"dbl":1e5}', ',"text":"1234567890123456"}']) {
        const text = object + tail;
        const error = caught(() => parseJsonBody(text));
        t.equal(error.code, "TURNOUT_ERR_BAD_JSON", text);
        t.equal(error.field, field, `${text}: field`);
        t.equal(error.message, plain.message, `${text}: message as on the JSON.parse path`);
      }
    }
  },
);

t.test(
  "invalid JSON parsed losslessly reports its syntax error, not a key given twice before it",
  async (t) => {
    const error = caught(() => parseJsonBody('{"a":1,"a":2,"n":1e5'));
    t.equal(error.code, "TURNOUT_ERR_BAD_JSON");
    t.match(error.message, /end of input at position 20/);
  },
);

t.test("the same key in different objects, and colons inside strings, are fine", async (t) => {
  const text = '{"a":"x:y:z","b":{"a":1,"k:":[{"a":2},{"a":3}]},"c":[]}';
  t.same(parseJsonBody(text), JSON.parse(text));
  t.same(parseJsonBody('{"__proto__":{"a":1},"a":2}'), JSON.parse('{"__proto__":{"a":1},"a":2}'));
});
