/**
 * The kind of a plain message type: reads a JSON object field by field
 * (strictly: unknown keys, two names of one field, two members of one oneof
 * are refused) and prints a decoded message per option variant. One codec per
 * protobuf.Type, built once and shared by every route; recursive types work
 * because a codec is registered before its fields are compiled.
 */
import protobuf from "protobufjs";
import { compileField, type FieldCodec, isJsonObject, ownField } from "./fields.js";
import { enumKind, OPTION_VARIANTS, SCALAR_KINDS, type ValueKind, type Writer } from "./kinds.js";
import {
  allowedWireTypes,
  checkUnknowns,
  compileFieldPrinter,
  type FieldPrinter,
} from "./printer.js";
import { BadValue, keySegment, rethrowUnder, show } from "./problems.js";
import { wellKnownKind } from "./well-known.js";

const kinds = new WeakMap<protobuf.Type, ValueKind>();

/** The kind of any message type: a well-known type's special form, or a MessageKind. */
export function messageKindOf(type: protobuf.Type): ValueKind {
  let kind = kinds.get(type);
  if (kind === undefined) {
    kind = wellKnownKind(type, messageKindOf);
    if (kind === undefined) {
      const codec = new MessageKind(type);
      kinds.set(type, codec);
      codec.compileFields();
      return codec;
    }
    kinds.set(type, kind);
  }
  return kind;
}

/** The kind of one value of a field: scalar, enum or message. */
export function fieldKindOf(field: protobuf.Field): ValueKind {
  const resolved = field.resolve().resolvedType;
  if (resolved instanceof protobuf.Enum) return enumKind(resolved);
  if (resolved instanceof protobuf.Type) return messageKindOf(resolved);
  const kind = SCALAR_KINDS[field.type];
  if (kind === undefined) throw new Error(`unsupported field type ${field.type}`);
  return kind;
}

export class MessageKind implements ValueKind {
  readonly label: string;
  readonly readParam = undefined;
  readonly nullValue = undefined;
  readonly isMessage = true;
  /** Fields in declaration order. */
  readonly fields: FieldCodec[] = [];
  /** Both the proto name and the JSON name of every field. */
  readonly byKey = new Map<string, FieldCodec>();
  readonly #printers: Array<Writer | undefined> = new Array(OPTION_VARIANTS);
  readonly #wireTypes: Map<number, number>;

  constructor(readonly type: protobuf.Type) {
    this.label = type.fullName.replace(/^\./, "");
    this.#wireTypes = allowedWireTypes(type);
  }

  compileFields(): void {
    for (const field of this.type.fieldsArray) {
      const codec = compileField(field, fieldKindOf(field));
      this.fields.push(codec);
      this.byKey.set(codec.protoName, codec);
      this.byKey.set(codec.jsonName, codec);
      if (codec.name !== codec.protoName) this.byKey.set(codec.name, codec);
    }
  }

  /** Bound, so a field can hold it as its reader. */
  readonly read = (value: unknown): Record<string, unknown> => this.readObject(value, false);

  readonly readEmbedded = (object: Record<string, unknown>) => this.readObject(object, true);

  /**
   * A JSON object -> a plain object protobufjs encodes. A set oneof member is
   * also recorded under the oneof's own name, as protobufjs's toObject does
   * (its encoder ignores it), so a second member is caught.
   */
  readObject(value: unknown, embedded: boolean): Record<string, unknown> {
    if (!isJsonObject(value)) {
      throw new BadValue(`expected an object (${this.label}), got ${show(value)}`);
    }
    const out: Record<string, unknown> = {};
    const byKey = this.byKey;
    let key = "";
    try {
      for (key in value) {
        const field = byKey.get(key);
        if (field === undefined) {
          if (embedded && key === "@type") continue;
          throw new BadValue(`unknown field ${show(key)} in ${this.label}`);
        }
        const item = value[key];
        let parsed: unknown;
        if (item !== null) parsed = field.read(item);
        else {
          refuseOtherName(value, key, field);
          if (field.kind.nullValue === undefined || field.repeated || field.map) continue;
          parsed = field.kind.nullValue;
        }
        if (ownField(out, field.name) !== undefined) {
          const other = key === field.protoName ? field.jsonName : field.protoName;
          throw new BadValue(`field ${show(key)} is also given as ${show(other)}`);
        }
        if (field.oneof !== undefined) {
          const other = ownField(out, field.oneof);
          if (other !== undefined) throw twoOfOneof(field.oneof, other as string, field.name);
          out[field.oneof] = field.name;
        }
        out[field.name] = parsed;
      }
    } catch (error) {
      rethrowUnder(error, keySegment(key));
    }
    return out;
  }

  writer(bits: number): Writer {
    let printer = this.#printers[bits];
    if (printer === undefined) {
      // Registered before the fields are compiled, so a recursive field finds it.
      const fields: FieldPrinter[] = [];
      const type = this.type;
      const wireTypes = this.#wireTypes;
      printer = (message) => {
        const unknowns = message.$unknowns;
        if (unknowns !== undefined) checkUnknowns(type, wireTypes, unknowns);
        let out = "";
        for (let i = 0; i < fields.length; i++) {
          const field = fields[i]!;
          const text = field.emit(message[field.name], message);
          if (text !== undefined) out += (out === "" ? field.first : field.next) + text;
        }
        return out === "" ? "{}" : `${out}}`;
      };
      this.#printers[bits] = printer;
      for (const field of this.fields) {
        fields.push(compileFieldPrinter(field, bits, field.kind.writer(bits)));
      }
    }
    return printer;
  }

  isDefault(): boolean {
    return false;
  }

  defaultText(): string {
    return "null";
  }
}

export function twoOfOneof(oneof: string, first: string, second: string): BadValue {
  return new BadValue(
    `oneof ${oneof} has two members set: ${first} and ${second}; set at most one`,
  );
}

/**
 * A null leaves its field unset, so it never reaches the both-names check
 * below it: the same field under another name in the object is refused here.
 * Only nulls pay for this lookup.
 */
function refuseOtherName(object: Record<string, unknown>, key: string, field: FieldCodec): void {
  for (const other of [field.protoName, field.jsonName, field.name]) {
    if (other !== key && Object.hasOwn(object, other)) {
      throw new BadValue(`field ${show(key)} is also given as ${show(other)}`);
    }
  }
}
