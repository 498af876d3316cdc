/**
 * A minimal WebAssembly binary writer: just what the JIT emits (one memory import, function
 * imports, functions with i32/i64 locals, structured control flow, tail calls (a post-MVP
 * feature V8 ships on by default since 11.2, Node 20), integer ops, loads/stores).
 * Hand-written because compile latency matters: the JIT builds modules while the guest waits.
 */

export const enum ValType { I32 = 0x7f, I64 = 0x7e }

/** Opcodes used by the JIT (WebAssembly core spec, section 5.4). */
export const enum Op {
  Unreachable = 0x00, Block = 0x02, Loop = 0x03, If = 0x04, Else = 0x05, End = 0x0b,
  Br = 0x0c, BrIf = 0x0d, Return = 0x0f, Call = 0x10, CallIndirect = 0x11,
  ReturnCall = 0x12, ReturnCallIndirect = 0x13, Drop = 0x1a, Select = 0x1b,
  LocalGet = 0x20, LocalSet = 0x21, LocalTee = 0x22, GlobalGet = 0x23,
  I32Load = 0x28, I64Load = 0x29,
  I64Load8S = 0x30, I64Load8U = 0x31, I64Load16S = 0x32, I64Load16U = 0x33, I64Load32S = 0x34, I64Load32U = 0x35,
  I32Store = 0x36, I64Store = 0x37, I64Store8 = 0x3c, I64Store16 = 0x3d, I64Store32 = 0x3e,
  I32Const = 0x41, I64Const = 0x42,
  I32Eqz = 0x45, I32Eq = 0x46, I32Ne = 0x47, I32LtS = 0x48, I32LtU = 0x49, I32GtS = 0x4a, I32GtU = 0x4b,
  I32GeU = 0x4f,
  I64Eqz = 0x50, I64Eq = 0x51, I64Ne = 0x52, I64LtS = 0x53, I64LtU = 0x54, I64GeS = 0x59, I64GeU = 0x5a,
  I32Add = 0x6a, I32Sub = 0x6b, I32Mul = 0x6c, I32DivS = 0x6d, I32DivU = 0x6e, I32RemS = 0x6f, I32RemU = 0x70,
  I32And = 0x71, I32Or = 0x72, I32Xor = 0x73, I32Shl = 0x74, I32ShrS = 0x75, I32ShrU = 0x76,
  I64Add = 0x7c, I64Sub = 0x7d, I64Mul = 0x7e, I64DivS = 0x7f, I64DivU = 0x80, I64RemS = 0x81, I64RemU = 0x82,
  I64And = 0x83, I64Or = 0x84, I64Xor = 0x85, I64Shl = 0x86, I64ShrS = 0x87, I64ShrU = 0x88,
  I32WrapI64 = 0xa7, I64ExtendI32S = 0xac, I64ExtendI32U = 0xad,
}

/** Block type of a structured instruction that yields nothing. */
export const VOID = 0x40;

/** A growable byte buffer with LEB128 helpers. */
export class ByteWriter {
  private buf: Uint8Array<ArrayBuffer> = new Uint8Array(1024);
  length = 0;

  byte(b: number): void {
    if (this.length === this.buf.length) {
      const grown = new Uint8Array(this.buf.length * 2);
      grown.set(this.buf);
      this.buf = grown;
    }
    this.buf[this.length++] = b;
  }
  bytes(data: ArrayLike<number>): void {
    if (this.length + data.length > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, this.length + data.length));
      grown.set(this.buf);
      this.buf = grown;
    }
    this.buf.set(data, this.length);
    this.length += data.length;
  }
  u32(v: number): void {
    v >>>= 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
  }
  s32(v: number): void {
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) { this.byte(b); return; }
      this.byte(b | 0x80);
    }
  }
  /** Signed LEB128 of the 64-bit value (hi:lo) given as two int32 halves. */
  s64(lo: number, hi: number): void {
    if (hi === lo >> 31) { this.s32(lo); return; }
    let v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) { this.byte(b); return; }
      this.byte(b | 0x80);
    }
  }
  result(): Uint8Array<ArrayBuffer> { return this.buf.subarray(0, this.length); }
}

/** The prefix byte of the atomic memory instructions (WebAssembly threads). */
const ATOMIC_PREFIX = 0xfe;

/**
 * Atomic read-modify-writes (after ATOMIC_PREFIX), each returning the old value zero-extended:
 * the `32` forms access 4 bytes. They trap on a misaligned address.
 */
export const enum AtomicOp {
  I64RmwAdd = 0x1f, I64Rmw32AddU = 0x24,
  I64RmwAnd = 0x2d, I64Rmw32AndU = 0x32,
  I64RmwOr = 0x34, I64Rmw32OrU = 0x39,
  I64RmwXor = 0x3b, I64Rmw32XorU = 0x40,
  I64RmwXchg = 0x42, I64Rmw32XchgU = 0x47,
  I64RmwCmpxchg = 0x49, I64Rmw32CmpxchgU = 0x4e,
}

/** Body of one function: code with the usual immediates, plus a label-depth counter for branches. */
export class FunctionBody extends ByteWriter {
  /** Open structured blocks (block, loop, if) around the current position. */
  depth = 0;

  op(o: Op): void { this.byte(o); }
  i32(v: number): void { this.byte(Op.I32Const); this.s32(v); }
  i64(lo: number, hi: number): void { this.byte(Op.I64Const); this.s64(lo, hi); }
  get(local: number): void { this.byte(Op.LocalGet); this.u32(local); }
  global(index: number): void { this.byte(Op.GlobalGet); this.u32(index); }
  set(local: number): void { this.byte(Op.LocalSet); this.u32(local); }
  tee(local: number): void { this.byte(Op.LocalTee); this.u32(local); }
  call(fn: number): void { this.byte(Op.Call); this.u32(fn); }
  /** A load or store with alignment hint `align` (log2) and a constant `offset`. */
  mem(o: Op, align: number, offset: number): void { this.byte(o); this.u32(align); this.u32(offset); }
  /** atomic.fence: a full memory barrier. */
  atomicFence(): void { this.byte(ATOMIC_PREFIX); this.u32(0x03); this.byte(0); }
  /** An atomic memory instruction; `align` must be the access's natural alignment (log2). */
  atomic(o: AtomicOp, align: number, offset: number): void { this.byte(ATOMIC_PREFIX); this.u32(o); this.u32(align); this.u32(offset); }

  /** Opens block/loop/if; returns its level, for `br`. */
  open(o: Op.Block | Op.Loop | Op.If, type: number = VOID): number {
    this.byte(o); this.byte(type);
    return this.depth++;
  }
  else(): void { this.byte(Op.Else); }
  close(): void { this.byte(Op.End); this.depth--; }
  /** Relative depth of the label opened at `level`, from here. */
  rel(level: number): number { return this.depth - 1 - level; }
  br(level: number): void { this.byte(Op.Br); this.u32(this.rel(level)); }
  brIf(level: number): void { this.byte(Op.BrIf); this.u32(this.rel(level)); }
}

export interface FuncType { params: ValType[]; results: ValType[] }
export interface FunctionDef { type: number; locals: ValType[]; body: FunctionBody }

/**
 * Builds a module that imports one shared memory ("env.memory"), some functions, optionally a
 * function table, and immutable i32 globals.
 */
export class ModuleWriter {
  readonly types: FuncType[] = [];
  private readonly imports: { name: string; type: number }[] = [];
  private readonly globals: string[] = [];
  private importsTable = false;
  private readonly functions: FunctionDef[] = [];
  private readonly exports: { name: string; fn: number }[] = [];
  private readonly functionNames: { fn: number; name: string }[] = [];

  constructor(private readonly memoryPages: number) {}

  type(params: ValType[], results: ValType[]): number {
    const key = params.join(',') + '>' + results.join(',');
    const i = this.types.findIndex((t) => t.params.join(',') + '>' + t.results.join(',') === key);
    if (i >= 0) return i;
    this.types.push({ params, results });
    return this.types.length - 1;
  }
  /** Declares an imported function "env.<name>"; imports must all precede functions. Returns its index. */
  importFunction(name: string, type: number): number {
    if (this.functions.length > 0) throw new Error('imports must be declared before functions');
    this.imports.push({ name, type });
    return this.imports.length - 1;
  }
  /** Declares an imported immutable i32 global "env.<name>"; returns its index. */
  importGlobal(name: string): number {
    this.globals.push(name);
    return this.globals.length - 1;
  }
  /** Adds a function; returns its index (imports come first). */
  addFunction(def: FunctionDef): number {
    this.functions.push(def);
    return this.imports.length + this.functions.length - 1;
  }
  export(name: string, fn: number): void { this.exports.push({ name, fn }); }
  /** Names function `fn` in the module's "name" section (profilers show it instead of wasm-function[fn]). */
  nameFunction(fn: number, name: string): void { this.functionNames.push({ fn, name }); }
  /** Imports "env.table", a funcref table (table 0), for call_indirect. */
  importTable(): void { this.importsTable = true; }

  bytes(): Uint8Array<ArrayBuffer> {
    const out = new ByteWriter();
    out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const section = (id: number, write: (w: ByteWriter) => void): void => {
      const w = new ByteWriter();
      write(w);
      out.byte(id); out.u32(w.length); out.bytes(w.result());
    };
    const name = (w: ByteWriter, s: string): void => { w.u32(s.length); for (let i = 0; i < s.length; i++) w.byte(s.charCodeAt(i)); };
    section(1, (w) => {
      w.u32(this.types.length);
      for (const t of this.types) {
        w.byte(0x60);
        w.u32(t.params.length); w.bytes(t.params);
        w.u32(t.results.length); w.bytes(t.results);
      }
    });
    section(2, (w) => {
      w.u32(this.imports.length + this.globals.length + 1 + (this.importsTable ? 1 : 0));
      name(w, 'env'); name(w, 'memory');
      w.byte(0x02); w.byte(0x03); w.u32(this.memoryPages); w.u32(this.memoryPages); // shared, min = max
      if (this.importsTable) { name(w, 'env'); name(w, 'table'); w.byte(0x01); w.byte(0x70); w.byte(0x00); w.u32(0); } // funcref, min 0
      for (const imp of this.imports) { name(w, 'env'); name(w, imp.name); w.byte(0x00); w.u32(imp.type); }
      for (const g of this.globals) { name(w, 'env'); name(w, g); w.byte(0x03); w.byte(ValType.I32); w.byte(0x00); } // const i32
    });
    section(3, (w) => {
      w.u32(this.functions.length);
      for (const f of this.functions) w.u32(f.type);
    });
    section(7, (w) => {
      w.u32(this.exports.length);
      for (const e of this.exports) { name(w, e.name); w.byte(0x00); w.u32(e.fn); }
    });
    section(10, (w) => {
      w.u32(this.functions.length);
      for (const f of this.functions) {
        const body = new ByteWriter();
        // Locals, run-length encoded by type.
        const runs: [number, ValType][] = [];
        for (const t of f.locals) {
          const last = runs[runs.length - 1];
          if (last && last[1] === t) last[0]++; else runs.push([1, t]);
        }
        body.u32(runs.length);
        for (const [n, t] of runs) { body.u32(n); body.byte(t); }
        body.bytes(f.body.result());
        body.byte(Op.End);
        w.u32(body.length); w.bytes(body.result());
      }
    });
    if (this.functionNames.length > 0) {
      section(0, (w) => { // the custom "name" section: subsection 1, function names (by index, ascending)
        name(w, 'name');
        const names = new ByteWriter();
        names.u32(this.functionNames.length);
        for (const { fn, name: n } of [...this.functionNames].sort((a, b) => a.fn - b.fn)) { names.u32(fn); name(names, n); }
        w.byte(1); w.u32(names.length); w.bytes(names.result());
      });
    }
    return out.result();
  }
}
