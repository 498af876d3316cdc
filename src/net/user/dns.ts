/**
 * The DNS server at 10.0.2.3: answers A queries with the host's resolver (getaddrinfo, so
 * /etc/hosts applies), AAAA with no records (the network is IPv4 only), other types NOTIMP.
 */
import { promises as dnsPromises } from 'node:dns';

const HEADER = 12;
const TYPE_A = 1;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const TTL_SECONDS = 60;
/** A reply must fit one UDP datagram without EDNS. */
const MAX_REPLY = 512;

export const Rcode = { noError: 0, formatError: 1, serverFailure: 2, nameError: 3, notImplemented: 4 } as const;

export type HostLookup = (name: string) => Promise<string[]>;

const hostLookup: HostLookup = async (name) => (await dnsPromises.lookup(name, { family: 4, all: true })).map((a) => a.address);

interface Question {
  name: string;
  type: number;
  qclass: number;
  /** Offset just past the question: the question bytes are copied into the reply. */
  end: number;
}

/** Reads the single question; labels only (a compression pointer has no business in a query). */
function parseQuestion(query: Uint8Array): Question | null {
  const labels: string[] = [];
  let i = HEADER;
  for (;;) {
    if (i >= query.length) return null;
    const length = query[i++];
    if (length === 0) break;
    if (length > 63 || i + length > query.length) return null;
    labels.push(Buffer.from(query.subarray(i, i + length)).toString('latin1'));
    i += length;
  }
  if (i + 4 > query.length) return null;
  const name = labels.join('.');
  if (name.length > 253) return null;
  return { name, type: (query[i] << 8) | query[i + 1], qclass: (query[i + 2] << 8) | query[i + 3], end: i + 4 };
}

export class DnsServer {
  constructor(private readonly lookup: HostLookup = hostLookup) {}

  /** The reply to one query, or a drop reason for something that is not a query at all. */
  async answer(query: Uint8Array): Promise<Uint8Array | string> {
    if (query.length < HEADER) return 'dns-short';
    if (query[2] & 0x80) return 'dns-not-a-query';
    const opcode = (query[2] >>> 3) & 0x0f;
    const questions = (query[4] << 8) | query[5];
    if (opcode !== 0) return this.reply(query, null, Rcode.notImplemented, []);
    if (questions !== 1) return this.reply(query, null, Rcode.formatError, []);
    const question = parseQuestion(query);
    if (!question) return this.reply(query, null, Rcode.formatError, []);
    if (question.qclass !== CLASS_IN) return this.reply(query, question, Rcode.notImplemented, []);
    if (question.type === TYPE_AAAA) return this.reply(query, question, Rcode.noError, []);
    if (question.type !== TYPE_A) return this.reply(query, question, Rcode.notImplemented, []);
    try {
      const addresses = await this.lookup(question.name);
      return this.reply(query, question, Rcode.noError, addresses);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return this.reply(query, question, code === 'ENOTFOUND' || code === 'ENODATA' ? Rcode.nameError : Rcode.serverFailure, []);
    }
  }

  private reply(query: Uint8Array, question: Question | null, rcode: number, addresses: string[]): Uint8Array {
    const questionBytes = question ? query.subarray(HEADER, question.end) : new Uint8Array(0);
    const answers = addresses.slice(0, Math.floor((MAX_REPLY - HEADER - questionBytes.length) / 16));
    const reply = new Uint8Array(HEADER + questionBytes.length + answers.length * 16);
    reply[0] = query[0];
    reply[1] = query[1];
    reply[2] = 0x80 | (query[2] & 0x79); // QR, the query's opcode and RD
    reply[3] = 0x80 | rcode; // RA
    reply[5] = question ? 1 : 0;
    reply[7] = answers.length;
    reply.set(questionBytes, HEADER);
    let i = HEADER + questionBytes.length;
    for (const address of answers) {
      // Name: a pointer to the question's name at offset 12.
      reply.set([0xc0, HEADER, 0, TYPE_A, 0, CLASS_IN, 0, 0, TTL_SECONDS >>> 8, TTL_SECONDS & 0xff, 0, 4], i);
      reply.set(address.split('.').map(Number), i + 12);
      i += 16;
    }
    return reply;
  }
}
