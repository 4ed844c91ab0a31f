import { join } from "node:path";
import t, { type Test } from "tap";
import { parseDocument } from "yaml";
import { Field } from "../../src/config/field.js";
import { loadConfig, loadConfigAndProtos } from "../../src/config/load.js";
import { Problems } from "../../src/config/problems.js";
import { checkKeys } from "../../src/config/read.js";
import { CANONICAL_JSON } from "../../src/config/types.js";
import type { ConfigProblem } from "../../src/errors.js";
import { EXAMPLE_PROTOS, problemsOf, route, table, writeTable } from "./fixtures/helpers.js";

function problemsFor(t: Test, yaml: string): ConfigProblem[] {
  return problemsOf(t, () => loadConfig(writeTable(t, yaml)));
}

/** A table whose nats section is `nats` (indented under `nats:`). */
function withNats(nats: string): string {
  return table(route()).replace("nats:\n  servers: [nats://127.0.0.1:4222]\n", `nats:\n${nats}`);
}

t.test("a YAML syntax error is reported at its line and column", async (t) => {
  const problems = problemsFor(t, "version: 1\nroutes: [a, b\nprotos: x\n");
  t.ok(problems.length >= 1);
  t.match(problems[0], { key: "(yaml)", location: /routes\.yaml:\d+:\d+$/ });
  t.match(problemsFor(t, "version: 1\nversion: 1\n"), [
    { key: "(yaml)", location: /:2:1$/, message: /unique/ },
  ]);
});

t.test("version: 1 is required and is the only version", async (t) => {
  t.match(problemsFor(t, table(route()).replace("version: 1\n", "")), [
    { key: "version", message: /is required/ },
  ]);
  t.match(problemsFor(t, table(route()).replace("version: 1", 'version: "1"')), [
    { key: "version", message: /must be 1.*got "1"/ },
  ]);
});

t.test("unknown keys are errors at every level, with the closest known key", async (t) => {
  const yaml = table(route({ cutover: "{ nat: 5 }", retry: "{ attemps: 1 }" }), "defualts: {}\n");
  t.match(problemsFor(t, yaml), [
    {
      key: "defualts",
      route: undefined,
      message: 'unknown key "defualts" (did you mean "defaults"?)',
    },
    { key: "routes[0].cutover.nat", route: "users.get", message: /did you mean "nats"/ },
    { key: "routes[0].retry.attemps", message: /did you mean "attempts"/ },
  ]);
  t.match(problemsFor(t, table(route({ colour: "red" }))), [
    { key: "routes[0].colour", message: /unknown key "colour"; known keys: name, method/ },
  ]);
  t.match(problemsFor(t, withNats("  servers: [nats://a:1]\n  tls: { certFile: x }\n")), [
    { key: "nats.tls.certFile", message: /did you mean "cert"/ },
  ]);
});

t.test("nats.tls.handshakeFirst is a boolean, passed on as it is", async (t) => {
  const tls = (value: string) =>
    withNats(`  servers: [tls://a:1]\n  tls: { handshakeFirst: ${value} }\n`);
  t.same(loadConfig(writeTable(t, tls("true"))).nats.tls, { handshakeFirst: true });
  t.match(problemsFor(t, tls('"yes"')), [{ key: "nats.tls.handshakeFirst" }]);
});

t.test("nats.servers is a non-empty list of nats:// or tls:// URLs", async (t) => {
  t.match(problemsFor(t, withNats("  servers: [nats://a:4222, 'http://b:80', 'c:4222']\n")), [
    { key: "nats.servers[1]", message: /must use nats:\/\/ or tls:\/\// },
    { key: "nats.servers[2]", message: /needs a scheme: nats:\/\/c:4222/ },
  ]);
  t.match(problemsFor(t, withNats("  servers: []\n")), [
    { key: "nats.servers", message: /at least one/ },
  ]);
  t.match(problemsFor(t, withNats("  name: x\n")), [
    { key: "nats.servers", message: /--nats-url/ },
  ]);
  const file = writeTable(t, withNats("  name: x\n"));
  t.strictSame(loadConfig(file, { natsUrl: "tls://n:1" }).nats.servers, ["tls://n:1"]);
});

t.test(
  "secrets are {env} or {file} references, never inline, and files resolve from the YAML's folder",
  async (t) => {
    const file = writeTable(
      t,
      withNats("  servers: [nats://a:1]\n  auth: { user: bob, pass: { file: ./secrets/pass } }\n"),
    );
    t.strictSame(loadConfig(file).nats.auth, {
      user: "bob",
      pass: { file: join(file, "..", "secrets", "pass") },
    });
    const token = writeTable(
      t,
      withNats("  servers: [nats://a:1]\n  auth: { token: { env: NATS_TOKEN } }\n"),
    );
    t.strictSame(loadConfig(token).nats.auth, { token: { env: "NATS_TOKEN" } });
    t.match(problemsFor(t, withNats("  servers: [nats://a:1]\n  auth: { nkeySeed: SUAXYZ }\n")), [
      {
        key: "nats.auth.nkeySeed",
        message: /inline secret would end up in git.*\{env: VAR_NAME\} or \{file:/,
      },
    ]);
    t.match(
      problemsFor(t, withNats("  servers: [nats://a:1]\n  auth: { token: { env: A, file: b } }\n")),
      [{ key: "nats.auth.token", message: /exactly one of env or file/ }],
    );
  },
);

t.test("auth takes exactly one method; user and pass go together", async (t) => {
  const both = "  servers: [nats://a:1]\n  auth: { token: { env: T }, credsFile: ./x.creds }\n";
  t.match(problemsFor(t, withNats(both)), [{ key: "nats.auth", message: /exactly one of token/ }]);
  const userOnly = "  servers: [nats://a:1]\n  auth: { user: bob }\n";
  t.match(problemsFor(t, withNats(userOnly)), [
    { key: "nats.auth", message: /user and pass go together/ },
  ]);
});

t.test("legacy: upstream URLs are absolute http(s) base URLs", async (t) => {
  const yaml = table(route()).replace(
    "  users: http://users-legacy:8080",
    "  users: users-legacy:8080\n  old: ftp://x\n  zero: http://x:0",
  );
  t.match(problemsFor(t, yaml), [
    { key: "legacy.users", message: /must use http:\/\/ or https:\/\// },
    { key: "legacy.old", message: /must use http:\/\/ or https:\/\// },
    { key: "legacy.zero", message: /"http:\/\/x:0" has port 0, where no server listens/ },
  ]);
});

t.test("a legacy upstream named __proto__ is a name like any other", async (t) => {
  const yaml = table(route({ legacy: "__proto__" })).replace(
    "  users: http://users-legacy:8080",
    "  __proto__: http://proto-legacy:8080",
  );
  const loaded = loadConfig(writeTable(t, yaml));
  t.equal(loaded.routes[0]!.legacy, "http://proto-legacy:8080");
  t.equal(
    Object.getOwnPropertyDescriptor(loaded.legacy, "__proto__")?.value,
    "http://proto-legacy:8080",
  );
  t.notOk(Object.isFrozen(Object.prototype), "Object.prototype is not frozen with the config");
});

t.test("credentials in an upstream or server URL are refused, and not printed back", async (t) => {
  const yaml = table(route())
    .replace("  users: http://users-legacy:8080", "  users: http://svc:s3cret@users-legacy:8080")
    .replace(/servers: \[[^\]]*\]/, "servers: [nats://bob:hunter2@n:4222, nats://T0KEN@m:4222]");
  const problems = problemsFor(t, yaml);
  t.match(problems, [
    {
      key: "nats.servers[0]",
      message: /"nats:\/\/\*\*\*:\*\*\*@n:4222" holds credentials; put them in nats.auth/,
    },
    { key: "nats.servers[1]", message: /"nats:\/\/\*\*\*@m:4222" holds credentials/ },
    {
      key: "legacy.users",
      message:
        /"http:\/\/\*\*\*:\*\*\*@users-legacy:8080" holds credentials, which are not sent upstream/,
    },
  ]);
  const text = JSON.stringify(problems);
  for (const secret of ["s3cret", "hunter2", "T0KEN", "bob", "svc"]) {
    t.notOk(text.includes(secret), `${secret} is not printed`);
  }
});

t.test(
  "credentials in a server or upstream URL that does not parse are masked in the problem too",
  async (t) => {
    const yaml = table(route())
      .replace("  users: http://users-legacy:8080", "  users: http://svc:s3cret@users-legacy:99999")
      .replace(
        /servers: \[[^\]]*\]/,
        "servers: [bob:hunter2@n:4222, nats://T0KEN@m:70000, nats://m:4222?token=Pa55, 'nats://al:p@ss/w?rd@o:70000']",
      );
    const problems = problemsFor(t, yaml);
    t.match(problems, [
      {
        key: "nats.servers[0]",
        message: /^"\*\*\*:\*\*\*@n:4222" needs a scheme: nats:\/\/\*\*\*:\*\*\*@n:4222/,
      },
      { key: "nats.servers[1]", message: /^"nats:\/\/\*\*\*@m:70000" is not a URL/ },
      { key: "nats.servers[2]", message: /^"nats:\/\/m:4222\?\*\*\*" is a server address/ },
      { key: "nats.servers[3]", message: /^"nats:\/\/\*\*\*:\*\*\*@o:70000" holds credentials/ },
      {
        key: "legacy.users",
        message: /^"http:\/\/\*\*\*:\*\*\*@users-legacy:99999" is not an absolute URL/,
      },
    ]);
    const text = JSON.stringify(problems);
    for (const secret of ["s3cret", "hunter2", "T0KEN", "Pa55", "bob", "svc", "ss/w", "rd"]) {
      t.notOk(text.includes(secret), `${secret} is not printed`);
    }
  },
);

t.test("without json anywhere a route prints canonical ProtoJSON", async (t) => {
  t.strictSame(loadConfig(writeTable(t, table(route()))).routes[0]!.json, CANONICAL_JSON);
});

t.test(
  "a route's json, retry and breaker merge per key over defaults, which merge over built-ins",
  async (t) => {
    const defaults =
      "defaults:\n  json: { names: proto }\n  retry: { attempts: 2, backoff: 100ms }\n  bodyLimit: 64KiB\n";
    const routes =
      route({ json: "{ int64: number }", retry: "{ attempts: 0 }", breaker: "{ volume: 5 }" }) +
      route({ name: "users.other", path: "/v1/other" });
    const [own, plain] = loadConfig(writeTable(t, table(routes, defaults))).routes;
    t.strictSame(own!.json, {
      names: "proto",
      int64: "number",
      enums: "name",
      emitDefaults: false,
    });
    t.strictSame(own!.retry, { attempts: 0, backoffMs: 100 });
    t.strictSame(own!.breaker, { errorPercent: 50, volume: 5, resetAfterMs: 10_000 });
    t.strictSame(plain!.json, { ...CANONICAL_JSON, names: "proto" });
    t.strictSame(plain!.retry, { attempts: 2, backoffMs: 100 });
    t.equal(plain!.bodyLimitBytes, 64 * 1024);
    t.equal(plain!.timeoutMs, 2000, "built-in timeout");
  },
);

t.test("tunables are range-checked in defaults and routes alike", async (t) => {
  const defaults = "defaults:\n  timeout: 0s\n  bodyLimit: 1.5\n";
  const yaml = table(
    route({ retry: "{ attempts: 1.5 }", breaker: "{ errorPercent: 101 }", bodyLimit: "1GiB" }),
    defaults,
  );
  t.match(problemsFor(t, yaml), [
    { key: "defaults.timeout", message: /more than 0/ },
    { key: "defaults.bodyLimit", message: /whole number of bytes/ },
    { key: "routes[0].retry.attempts", message: /whole number/ },
    { key: "routes[0].breaker.errorPercent", message: /must be below 100/ },
    { key: "routes[0].bodyLimit", message: /must be at most 256MiB .*, got "1GiB"/ },
  ]);
});

t.test(
  "a duration past Node's longest timer (596h) is refused, not fired after 1 ms",
  async (t) => {
    const yaml = table(
      route({ breaker: "{ resetAfter: 900h }" }),
      "defaults:\n  timeout: 600h\n  retry: { attempts: 1, backoff: 596h }\n",
    );
    t.match(problemsFor(t, yaml), [
      { key: "defaults.timeout", message: /at most 596h .*got "600h"/ },
      { key: "routes[0].breaker.resetAfter", message: /at most 596h .*got "900h"/ },
    ]);
  },
);

t.test(
  "a secret pasted where its variable's name goes is refused without being printed",
  async (t) => {
    const yaml = withNats("  servers: [nats://a:1]\n  auth: { token: { env: 's3cr3t-T0ken!' } }\n");
    const problems = problemsFor(t, yaml);
    t.match(problems, [
      { key: "nats.auth.token.env", message: /is not an environment variable name/ },
    ]);
    t.notOk(JSON.stringify(problems).includes("s3cr3t"), "the value is not in the problem");
  },
);

t.test("protos must exist relative to the YAML file", async (t) => {
  const yaml = table(route()).replace(`protos: [${EXAMPLE_PROTOS}]`, "protos: [./missing]");
  t.match(problemsFor(t, yaml), [{ key: "protos[0]", message: /"\.\/missing" does not exist/ }]);
});

t.test("a .proto syntax error is reported in its own file, with the line", async (t) => {
  const dir = t.testdir({
    "routes.yaml": table(route()).replace(`protos: [${EXAMPLE_PROTOS}]`, "protos: [./proto]"),
    proto: {
      "good.proto": 'syntax = "proto3";\npackage ok;\nmessage A { string a = 1; }\n',
      "broken.proto": 'syntax = "proto3";\npackage bad;\nmessage B {\n  string b = 1\n}\n',
      "importer.proto": 'syntax = "proto3";\nimport "nowhere.proto";\n',
    },
  });
  const problems = problemsOf(t, () => loadConfig(join(dir, "routes.yaml")));
  t.match(problems, [
    { key: "protos", location: /broken\.proto:5$/, message: "illegal token '}', ';' expected" },
    {
      key: "protos",
      location: /importer\.proto$/,
      message: /imports "nowhere.proto", which is in none of .*proto: list its folder/,
    },
  ]);
});

t.test("a type defined in two files is reported in the second, naming the first", async (t) => {
  const thing = 'syntax = "proto3";\npackage shared.v1;\nmessage Thing { string id = 1; }\n';
  const dir = t.testdir({
    "routes.yaml": table(route()).replace(
      `protos: [${EXAMPLE_PROTOS}]`,
      `protos: [${EXAMPLE_PROTOS}, ./p]`,
    ),
    p: { a: { "x.proto": thing }, b: { "y.proto": thing } },
  });
  t.match(
    problemsOf(t, () => loadConfig(join(dir, "routes.yaml"))),
    [
      {
        key: "protos",
        location: /p\/b\/y\.proto$/,
        message: /^defines shared\.v1\.Thing, which .*p\/a\/x\.proto defines already$/,
      },
    ],
  );
  const unpackaged = 'syntax = "proto3";\nmessage Thing { string id = 1; }\n';
  const bare = t.testdir({
    "routes.yaml": table(route()).replace(
      `protos: [${EXAMPLE_PROTOS}]`,
      `protos: [${EXAMPLE_PROTOS}, ./p]`,
    ),
    p: { a: { "x.proto": unpackaged }, b: { "y.proto": unpackaged } },
  });
  t.match(
    problemsOf(t, () => loadConfig(join(bare, "routes.yaml"))),
    [
      {
        location: /p\/b\/y\.proto$/,
        message: /^defines Thing, which .*p\/a\/x\.proto defines already$/,
      },
    ],
  );
});

t.test(
  "imports resolve as protoc -I has them: from a protos folder, and google/protobuf files protobufjs ships",
  async (t) => {
    const routes = route({
      request: "users.v1.GetUserRequest",
      response: "users.v1.User",
    });
    const dir = t.testdir({
      "routes.yaml": table(routes).replace(`protos: [${EXAMPLE_PROTOS}]`, "protos: [./proto]"),
      proto: {
        common: {
          v1: {
            "common.proto":
              'syntax = "proto3";\npackage common.v1;\nmessage Money { int64 cents = 1; }\n',
          },
        },
        users: {
          v1: {
            "users.proto": `syntax = "proto3";
package users.v1;
import "common/v1/common.proto";
import "google/protobuf/descriptor.proto";
extend google.protobuf.FieldOptions { string label = 50001; }
message GetUserRequest { string id = 1 [(label) = "id"]; }
message User { string id = 1; common.v1.Money balance = 2; }
`,
          },
        },
      },
    });
    const loaded = loadConfigAndProtos(join(dir, "routes.yaml"));
    const user = loaded.root.lookupType("users.v1.User");
    t.equal(user.fields.balance?.resolvedType?.fullName, ".common.v1.Money");
    t.equal(
      loaded.messageTypes,
      3,
      "the listed files' own types: the imported common one counted once",
    );
  },
);

t.test(
  "a .proto that parses but doesn't resolve is reported in the file defining the type",
  async (t) => {
    const dir = t.testdir({
      "routes.yaml": table(route()).replace(`protos: [${EXAMPLE_PROTOS}]`, "protos: [./a.proto]"),
      "a.proto": 'syntax = "proto3";\npackage a;\nmessage A { Missing m = 1; }\n',
    });
    t.match(
      problemsOf(t, () => loadConfig(join(dir, "routes.yaml"))),
      [{ key: "protos", location: /a\.proto$/, message: /Missing/ }],
    );
  },
);

t.test("routes must be a non-empty list", async (t) => {
  t.match(problemsFor(t, table("").replace("routes:\n", "routes: []\n")), [
    { key: "routes", message: /at least one route/ },
  ]);
  t.match(problemsFor(t, table("").replace("routes:\n", "")), [
    { key: "routes", message: /is required/ },
  ]);
});

t.test(
  "a secret written inline as a number (decimal or hex) is refused like a string one, its value never printed",
  async (t) => {
    const pass = withNats("  servers: [nats://a:1]\n  auth: { user: bob, pass: 83625147 }\n");
    const token = withNats("  servers: [nats://a:1]\n  auth: { token: 0x5f3759df }\n");
    const envName = withNats("  servers: [nats://a:1]\n  auth: { token: { env: 31337420 } }\n");
    const problems = [pass, token, envName].flatMap((yaml) => problemsFor(t, yaml));
    t.match(problems, [
      { key: "nats.auth.pass", message: /inline secret would end up in git/ },
      { key: "nats.auth.token", message: /inline secret would end up in git/ },
      { key: "nats.auth.token.env", message: /is not an environment variable name/ },
    ]);
    const printed = JSON.stringify(problems);
    for (const value of ["83625147", "5f3759df", "1597463007", "31337420"]) {
      t.notOk(printed.includes(value), `${value} is not in the problems`);
    }
  },
);

t.test(
  "a %YAML 1.1 directive is refused at its line instead of bringing back 1.1's yes/octal/sexagesimal coercions",
  async (t) => {
    const yaml = `%YAML 1.1\n---\n${table(route({ idempotent: "yes", timeout: "1:30" }))}`;
    t.match(problemsFor(t, yaml), [
      {
        key: "(yaml)",
        location: /routes\.yaml:1:1$/,
        message: /^%YAML 1\.1: only YAML 1\.2 is read/,
      },
    ]);
    const explicit12 = `%YAML 1.2\n---\n${table(route({ name: "yes" }))}`;
    t.equal(loadConfig(writeTable(t, explicit12)).routes[0]!.name, "yes", "1.2 keeps yes a string");
  },
);

t.test("a YAML 1.1 merge key is named << in the problem, not Symbol(<<)", async (t) => {
  // Only reachable for a document parsed as YAML 1.1, which readYaml refuses first.
  const doc = parseDocument("%YAML 1.1\n---\nbase: &b { a: 1 }\nmap:\n  <<: *b\n");
  const problems = new Problems("routes.yaml");
  const root = new Field({ doc, problems }, doc.contents, "", 0);
  checkKeys(root.child("map"), ["a"]);
  t.match(problems.list(), [
    {
      key: "map.<<",
      message: 'unknown key "<<": YAML merge keys are not supported; use an anchor per value',
    },
  ]);
});

t.test("an unknown YAML tag is a problem at its position, not silently dropped", async (t) => {
  const problems = problemsFor(t, table(route({ subject: "!binary svc.users.get" })));
  t.match(problems, [
    { key: "(yaml)", location: /routes\.yaml:11:14$/, message: /^Unresolved tag: !binary: / },
  ]);
  t.equal(problems.length, 1);
});

t.test(
  "whole-number settings past 2^53 are refused as too large, echoing the number as written; retry.attempts is at most 10",
  async (t) => {
    const defaults =
      "defaults:\n  retry: { attempts: 1000000 }\n  breaker: { volume: 1e300 }\n  bodyLimit: 9007199254740993\n";
    const yaml = table(
      route({ retry: "{ attempts: 11 }", rateLimit: "{ max: 1e20 }", bodyLimit: "1e300" }),
      defaults,
    );
    t.match(problemsFor(t, yaml), [
      {
        key: "defaults.retry.attempts",
        message: /^must be at most 10 \(each retry adds a whole timeout.*\), got 1000000$/,
      },
      {
        key: "defaults.breaker.volume",
        message: "is too large: at most 9007199254740991, got 1e300",
      },
      {
        key: "defaults.bodyLimit",
        message: "is too large: at most 9007199254740991 bytes (8 PiB), got 9007199254740993",
      },
      { key: "routes[0].retry.attempts", message: /must be at most 10/ },
      { key: "routes[0].rateLimit.max", message: /is too large: .*, got 1e20$/ },
      { key: "routes[0].bodyLimit", message: /is too large: .*, got 1e300$/ },
    ]);
    const ten = loadConfig(writeTable(t, table(route({ retry: "{ attempts: 10 }" }))));
    t.equal(ten.routes[0]!.retry.attempts, 10, "10 retries are allowed");
  },
);

t.test(
  "a NATS server URL with a path, a query, a fragment or port 0 is refused, in the file and in --nats-url",
  async (t) => {
    const urls = [
      "nats://n:4222/path",
      "nats://n:4222?x=1",
      "nats://n:4222?",
      "tls://n:4222#frag",
      "nats://n:0",
    ];
    const problems = problemsFor(
      t,
      withNats(`  servers: [${urls.map((u) => `'${u}'`).join(", ")}]\n`),
    );
    // A query or fragment is masked: it may hold a token.
    const shown = ["nats://n:4222/path", "nats://n:4222?***", "nats://n:4222?", "tls://n:4222#***"];
    t.match(problems, [
      ...shown.map((url, i) => ({
        key: `nats.servers[${i}]`,
        location: /routes\.yaml:4:\d+$/,
        message: `"${url}" is a server address: it cannot carry a path, a query or a fragment; write nats://host:port`,
      })),
      { key: "nats.servers[4]", message: /^"nats:\/\/n:0" has port 0, where no server listens/ },
    ]);
    t.equal(problems.length, urls.length);
    const flag = writeTable(t, table(route()));
    t.match(
      problemsOf(t, () => loadConfig(flag, { natsUrl: "nats://a:4222/x" })),
      [{ location: "--nats-url", key: "nats.servers", message: /cannot carry a path/ }],
    );
    const plain = withNats("  servers: [tls://n:4222, tls://m:4222/, tls://o]\n");
    t.strictSame(loadConfig(writeTable(t, plain)).nats.servers, [
      "tls://n:4222",
      "tls://m:4222/",
      "tls://o",
    ]);
  },
);

t.test(
  "a server list mixing tls:// and nats:// is refused, in the file and in --nats-url: TLS is for all or none",
  async (t) => {
    const mixed = problemsFor(t, withNats("  servers: [nats://n:4222, tls://m:4222]\n"));
    t.match(mixed, [
      {
        key: "nats.servers",
        location: /routes\.yaml:4:\d+$/,
        message:
          /^mixes tls:\/\/ and nats:\/\/ servers: the NATS client requires TLS of every server or of none/,
      },
    ]);
    const flag = writeTable(t, table(route()));
    t.match(
      problemsOf(t, () => loadConfig(flag, { natsUrl: "tls://a:4222,nats://b:4222" })),
      [{ location: "--nats-url", key: "nats.servers", message: /^mixes tls:\/\/ and nats:\/\// }],
    );
    t.match(
      problemsOf(t, () => loadConfig(flag, { natsUrl: "TLS://a:4222,nats://b:4222" })),
      [{ message: /^mixes tls:\/\/ and nats:\/\// }],
      "the scheme in any case, as the client reads it",
    );
  },
);

t.test(
  "a route whose overall deadline ((1 + retry.attempts) x timeout) passes 596h is refused where it is set, naming both values",
  async (t) => {
    const defaults = "defaults:\n  timeout: 300h\n  retry: { attempts: 1 }\n";
    const routes =
      route() +
      route({ name: "b", path: "/b", timeout: "100h", retry: "{ attempts: 10 }" }) +
      route({ name: "c", path: "/c", retry: "{ attempts: 2 }", timeout: "1h" }) +
      route({ name: "d", path: "/d", retry: "{ attempts: 2 }" });
    const deadline = (timeout: string, attempts: number, total: string) =>
      `with timeout ${timeout} and retry.attempts ${attempts}, a request's overall deadline ((1 + attempts) x timeout = ${total}) is past 596h, the longest timer Node keeps; lower timeout or retry.attempts`;
    const problems = problemsFor(t, table(routes, defaults));
    t.match(problems, [
      { key: "defaults.timeout", location: /:8:12$/, message: deadline("300h", 1, "600h") },
      { route: "b", key: "routes[1].timeout", message: deadline("100h", 10, "1100h") },
      { route: "d", key: "routes[3].retry.attempts", message: deadline("300h", 2, "900h") },
    ]);
    t.equal(problems.length, 3, "users.get inherits (reported at defaults); c fits");
    const limit = loadConfig(
      writeTable(t, table(route({ timeout: "195225786ms", retry: "{ attempts: 10 }" }))),
    );
    t.equal(limit.routes[0]!.timeoutMs * 11, 2 ** 31 - 2, "just within 2^31 - 1 ms loads");
  },
);

t.test(
  "breaker.errorPercent 100 is refused: the breaker opens only above it, and no error rate is above 100%",
  async (t) => {
    t.match(problemsFor(t, table(route({ breaker: "{ errorPercent: 100 }" }))), [
      {
        key: "routes[0].breaker.errorPercent",
        message:
          "must be below 100 (the breaker opens when the error rate is above it, and no rate is above 100%), got 100",
      },
    ]);
    const config = loadConfig(writeTable(t, table(route({ breaker: "{ errorPercent: 99.9 }" }))));
    t.equal(config.routes[0]!.breaker.errorPercent, 99.9);
  },
);

t.test(
  "a failed protos entry leaves the others loaded: route problems still show, types that may be in the failed entry are not reported",
  async (t) => {
    const protos = `protos: [${EXAMPLE_PROTOS}, ./typo-dir]`;
    const yaml = table(
      route({ path: "/v1/users/:uid", response: "users.v1.Usr", error: "v1.Error" }),
    ).replace(`protos: [${EXAMPLE_PROTOS}]`, protos);
    const problems = problemsFor(t, yaml);
    t.match(problems, [
      {
        key: "protos[1]",
        message:
          /^"\.\/typo-dir" does not exist \(looked for .*\); routes' missing types are reported once every protos entry loads$/,
      },
      { key: "routes[0].path", message: /:uid matches no field of users.v1.GetUserRequest/ },
    ]);
    t.equal(problems.length, 2, "users.v1.Usr and v1.Error may be in ./typo-dir");
  },
);

t.test(
  "a .proto file that does not parse leaves the others loaded and says why route types go unreported",
  async (t) => {
    const dir = t.testdir({
      "routes.yaml": table(route({ path: "/v1/users/:uid", response: "bad.B" })).replace(
        `protos: [${EXAMPLE_PROTOS}]`,
        `protos: [${EXAMPLE_PROTOS}, ./broken.proto]`,
      ),
      "broken.proto": 'syntax = "proto3";\npackage bad;\nmessage B {\n  string b = 1\n}\n',
    });
    const problems = problemsOf(t, () => loadConfig(join(dir, "routes.yaml")));
    t.match(problems, [
      { key: "routes[0].path", message: /:uid matches no field/ },
      {
        key: "protos",
        location: /broken\.proto:5$/,
        message: /; routes' missing types are reported once every protos entry loads$/,
      },
    ]);
    t.equal(problems.length, 2);
  },
);

t.test(
  "serve's checks of the nats secrets are placed at their key's line:col, among the file's other problems",
  async (t) => {
    const yaml = table(route({ colour: "red" })).replace(
      "  servers: [nats://127.0.0.1:4222]\n",
      "  servers: [nats://127.0.0.1:4222]\n  auth: { token: { env: UNSET_TOKEN } }\n  tls: { ca: ./ca.pem }\n",
    );
    const file = writeTable(t, yaml);
    const problems = problemsOf(t, () =>
      loadConfig(file, {
        checkNats: (nats) => [
          { location: "ignored", key: "nats.tls.ca", message: `cannot read ${nats.tls?.ca}` },
          { location: "ignored", key: "nats.auth.token", message: "UNSET_TOKEN is not set" },
        ],
      }),
    );
    t.match(problems, [
      { location: `${file}:5:18`, key: "nats.auth.token", message: "UNSET_TOKEN is not set" },
      {
        location: `${file}:6:14`,
        key: "nats.tls.ca",
        message: `cannot read ${join(file, "..", "ca.pem")}`,
      },
      { location: `${file}:17:5`, key: "routes[0].colour", message: /unknown key "colour"/ },
    ]);
    t.equal(problems.length, 3);
  },
);
