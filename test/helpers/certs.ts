/**
 * Test PKI made with the `openssl` CLI: a CA, a server certificate valid for
 * 127.0.0.1 and localhost (what the Node client checks on loopback), and a
 * client certificate, all signed by that CA.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCa {
  readonly cert: string;
  readonly key: string;
}

export interface TestCerts {
  readonly ca: TestCa;
  /** Server certificate, SAN IP:127.0.0.1,DNS:localhost. */
  readonly server: { readonly cert: string; readonly key: string };
  /** Client certificate (extendedKeyUsage clientAuth). */
  readonly client: { readonly cert: string; readonly key: string };
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** A self-signed CA named `name`, written into `dir`. */
export function makeCa(dir: string, name: string): TestCa {
  const cert = join(dir, `${name}-ca.pem`);
  const key = join(dir, `${name}-ca-key.pem`);
  openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${name} test CA`,
    "-keyout",
    key,
    "-out",
    cert,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { cert, key };
}

/** A leaf certificate signed by `ca`, with the given extensions. */
export function makeLeaf(
  dir: string,
  ca: TestCa,
  name: string,
  extensions: string,
): { cert: string; key: string } {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    key,
    "-out",
    csr,
  ]);
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-days",
    "2",
    "-sha256",
    "-extfile",
    ext,
    "-out",
    cert,
  ]);
  return { cert, key };
}

/** CA, server and client certificates in `dir`. */
export function makeCerts(dir: string, name = "turnout"): TestCerts {
  const ca = makeCa(dir, name);
  const server = makeLeaf(
    dir,
    ca,
    `${name}-server`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  const client = makeLeaf(dir, ca, `${name}-client`, "extendedKeyUsage=clientAuth\n");
  return { ca, server, client };
}
