// Tests for src/cli/settings.ts (kept here with the config tests it shares helpers with).
import t, { type Test } from "tap";
import { parseFlags, resolveConnection, resolveSettings } from "../../src/cli/settings.js";
import { ConfigError } from "../../src/errors.js";

t.test("without flags or env every setting has its documented default", async (t) => {
  t.strictSame(resolveSettings([], {}), {
    configFile: "./routes.yaml",
    natsUrl: undefined,
    port: 8080,
    adminPort: 9090,
    host: "0.0.0.0",
    workers: 1,
    logLevel: "info",
    tls: undefined,
    trustProxy: undefined,
  });
});

const ENV = {
  TURNOUT_CONFIG: "/env/routes.yaml",
  TURNOUT_NATS_URL: "nats://env:4222",
  TURNOUT_PORT: "8000",
  TURNOUT_ADMIN_PORT: "9000",
  TURNOUT_HOST: "127.0.0.1",
  TURNOUT_WORKERS: "4",
  TURNOUT_LOG_LEVEL: "warn",
};

t.test("TURNOUT_* env vars replace the defaults", async (t) => {
  t.strictSame(resolveSettings([], ENV), {
    configFile: "/env/routes.yaml",
    natsUrl: "nats://env:4222",
    port: 8000,
    adminPort: 9000,
    host: "127.0.0.1",
    workers: 4,
    logLevel: "warn",
    tls: undefined,
    trustProxy: undefined,
  });
});

t.test("flags beat env vars", async (t) => {
  const argv = [
    "--config=/flag/routes.yaml",
    "--nats-url",
    "nats://flag:4222,nats://flag2:4443",
    "--port",
    "1",
    "--admin-port",
    "2",
    "--host",
    "::1",
    "--workers",
    "8",
    "--log-level",
    "debug",
  ];
  t.strictSame(resolveSettings(argv, ENV), {
    configFile: "/flag/routes.yaml",
    natsUrl: "nats://flag:4222,nats://flag2:4443",
    port: 1,
    adminPort: 2,
    host: "::1",
    workers: 8,
    logLevel: "debug",
    tls: undefined,
    trustProxy: undefined,
  });
});

t.test("an empty env var counts as unset", async (t) => {
  const settings = resolveSettings([], { TURNOUT_PORT: "", TURNOUT_NATS_URL: "" });
  t.equal(settings.port, 8080);
  t.equal(settings.natsUrl, undefined);
});

/** The problems a call throws as a ConfigError. */
function problems(t: Test, fn: () => unknown) {
  const error = t.throws(fn, ConfigError) as ConfigError;
  return error.problems ?? [];
}

t.test("bad values are all reported, each naming the flag or env var it came from", async (t) => {
  const found = problems(t, () =>
    resolveSettings(["--port", "80x", "--workers", "0"], { TURNOUT_ADMIN_PORT: "70000" }),
  );
  t.strictSame(found, [
    {
      location: "--port",
      key: "port",
      message: 'must be a whole number from 0 to 65535, got "80x"',
    },
    {
      location: "TURNOUT_ADMIN_PORT",
      key: "admin-port",
      message: 'must be a whole number from 0 to 65535, got "70000"',
    },
    {
      location: "--workers",
      key: "workers",
      message: 'must be a whole number from 1 to 1024, got "0"',
    },
  ]);
});

t.test(
  "the admin port may not equal the gateway port, unless both ask for a free one",
  async (t) => {
    const found = problems(t, () => resolveSettings(["--port", "9090"], {}));
    t.match(found, [{ location: "--admin-port", message: /must differ from the port \(9090\)/ }]);
    t.equal(resolveSettings(["--port", "0", "--admin-port", "0"], {}).port, 0);
  },
);

t.test(
  "an empty host is refused from --host and from TURNOUT_HOST, rather than listening everywhere",
  async (t) => {
    const fromFlag = problems(t, () => resolveSettings(["--host", ""], {}));
    t.match(fromFlag, [{ location: "--host", key: "host", message: /^is empty: give a host/ }]);
    const fromEnv = problems(t, () => resolveSettings([], { TURNOUT_HOST: "" }));
    t.match(fromEnv, [{ location: "TURNOUT_HOST", key: "host", message: /^is empty/ }]);
    t.equal(resolveSettings(["--host", "127.0.0.1"], { TURNOUT_HOST: "" }).host, "127.0.0.1");
  },
);

t.test('an empty --config is refused naming the flag, not read as a file named ""', async (t) => {
  const found = problems(t, () => resolveSettings(["--config", ""], {}));
  t.match(found, [{ location: "--config", key: "config", message: /^is empty/ }]);
  t.equal(resolveSettings([], { TURNOUT_CONFIG: "" }).configFile, "./routes.yaml");
});

t.test("a NATS url that is not nats:// or tls:// is refused at its source", async (t) => {
  const found = problems(t, () =>
    resolveSettings([], { TURNOUT_NATS_URL: "nats://ok:1,http://x" }),
  );
  t.match(found, [
    { location: "TURNOUT_NATS_URL", key: "nats-url", message: /must use nats:\/\// },
  ]);
});

t.test("an unknown flag is refused with the closest known one", async (t) => {
  const found = problems(t, () => resolveSettings(["--prot", "80"], {}));
  t.match(found, [{ location: "--prot", message: "unknown flag --prot; did you mean --port?" }]);
});

t.test("a flag without its value is refused", async (t) => {
  const found = problems(t, () => resolveSettings(["--port"], {}));
  t.match(found, [{ location: "--port", message: /argument missing/ }]);
});

t.test("commands with their own flags reuse the connection settings", async (t) => {
  const { values, positionals } = parseFlags(
    ["set", "users.get", "--reason", "ramp", "--config", "/x.yaml"],
    { config: { type: "string" }, "nats-url": { type: "string" }, reason: { type: "string" } },
    true,
  );
  t.strictSame(positionals, ["set", "users.get"]);
  t.equal(values.reason, "ramp");
  t.strictSame(resolveConnection(values, { TURNOUT_NATS_URL: "nats://e:1" }), {
    configFile: "/x.yaml",
    natsUrl: "nats://e:1",
  });
});

t.test(
  "--tls-cert and --tls-key turn on HTTPS; one without the other or a missing file is refused",
  async (t) => {
    const dir = t.testdir({ "cert.pem": "c", "key.pem": "k" });
    const cert = `${dir}/cert.pem`;
    const key = `${dir}/key.pem`;
    t.strictSame(resolveSettings(["--tls-cert", cert, "--tls-key", key], {}).tls, {
      certFile: cert,
      keyFile: key,
    });
    t.strictSame(resolveSettings([], { TURNOUT_TLS_CERT: cert, TURNOUT_TLS_KEY: key }).tls, {
      certFile: cert,
      keyFile: key,
    });
    t.match(
      problems(t, () => resolveSettings(["--tls-cert", cert], {})),
      [{ key: "tls-key", message: /both --tls-cert and --tls-key/ }],
    );
    t.match(
      problems(t, () => resolveSettings(["--tls-cert", cert, "--tls-key", `${dir}/nope.pem`], {})),
      [{ location: "--tls-key", key: "tls-key", message: /no such file/ }],
    );
  },
);

t.test(
  "--trust-proxy takes true, false, a number of hops or proxy addresses and CIDRs; anything else is refused",
  async (t) => {
    const trust = (value: string) => resolveSettings(["--trust-proxy", value], {}).trustProxy;
    t.equal(trust("true"), true);
    t.equal(trust("false"), undefined);
    t.equal(trust("2"), 2);
    t.strictSame(trust("10.0.0.0/8, 192.168.1.7,fd00::/8"), [
      "10.0.0.0/8",
      "192.168.1.7",
      "fd00::/8",
    ]);
    t.strictSame(resolveSettings([], { TURNOUT_TRUST_PROXY: "127.0.0.1" }).trustProxy, [
      "127.0.0.1",
    ]);
    for (const bad of ["yes", "0", "10.0.0.0/33", "lb.internal", "1.2.3.4/8/1"]) {
      t.match(
        problems(t, () => resolveSettings(["--trust-proxy", bad], {})),
        [
          {
            location: "--trust-proxy",
            key: "trust-proxy",
            message: /must be true, false, a number of hops/,
          },
        ],
        bad,
      );
    }
  },
);
