/**
 * Subject templates: `svc.users.{region}.get` filled from path params. A value
 * becomes one NATS token, so anything that would change the subject's shape —
 * empty, a `.` (extra token), `*` or `>` (wildcards), whitespace or control
 * characters (protocol framing) — is refused before anything is published.
 */
import { TurnoutError } from "../errors.js";

export type SubjectBuilder = (params: Readonly<Record<string, string | undefined>>) => string;

const PARAM_TOKEN = /^\{([A-Za-z_][A-Za-z0-9_.]*)\}$/;
// Space, tab, CR, LF and every other C0/C1 control or Unicode space.
const UNSAFE_TOKEN = /[.*>\s\p{Cc}]/u;

/** Names of the `{param}` tokens of a template, in order. */
export function subjectParams(template: string): string[] {
  const names: string[] = [];
  for (const token of template.split(".")) {
    const match = PARAM_TOKEN.exec(token);
    if (match?.[1] !== undefined) names.push(match[1]);
  }
  return names;
}

/** Compiles a template once; the builder checks and joins the tokens per request. */
export function compileSubject(template: string): SubjectBuilder {
  const parts = template.split(".").map((token): { literal: string } | { param: string } => {
    const match = PARAM_TOKEN.exec(token);
    return match?.[1] === undefined ? { literal: token } : { param: match[1] };
  });
  if (parts.every((part) => "literal" in part)) return () => template;

  return (params) => {
    let subject = "";
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const token = "literal" in part ? part.literal : checkedToken(part.param, params[part.param]);
      subject = i === 0 ? token : `${subject}.${token}`;
    }
    return subject;
  };
}

function checkedToken(name: string, value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new TurnoutError("TURNOUT_ERR_BAD_SUBJECT_TOKEN", `parameter "${name}" is empty`, {
      field: name,
    });
  }
  if (UNSAFE_TOKEN.test(value)) {
    throw new TurnoutError(
      "TURNOUT_ERR_BAD_SUBJECT_TOKEN",
      `parameter "${name}" may not contain ".", "*", ">", whitespace or control characters`,
      { field: name },
    );
  }
  return value;
}
