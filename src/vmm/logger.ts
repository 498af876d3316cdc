/**
 * The VMM's log (pino, which fastify logs through too). Until PUT /logger, warnings and errors go
 * to stderr; PUT /logger appends JSON lines to a file or named pipe at the chosen level.
 * `show_level` and `show_log_origin` decide whether each line carries the level and the
 * component that logged ("api" for the HTTP server, "vm" for the VM's lifecycle).
 */
import * as fs from 'node:fs';
import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';
import type { Logger as LoggerConfig } from './config.js';
import { RequestError } from './errors.js';

export class LoggerConfigError extends RequestError {
  override name = 'LoggerConfigError';
}

const LEVELS: Record<string, LevelWithSilent> = { error: 'error', warning: 'warn', info: 'info', debug: 'debug', trace: 'trace', off: 'silent' };

/** pino writes each log line here; the line is reshaped for the configured output. */
class LogDestination {
  fd = 2;
  showLevel = true;
  showOrigin = true;

  write(line: string): void {
    let out = line;
    if (!this.showLevel || !this.showOrigin) {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (!this.showLevel) delete rec.level;
      if (!this.showOrigin) delete rec.origin;
      out = JSON.stringify(rec) + '\n';
    }
    try {
      fs.writeSync(this.fd, out);
    } catch {
      // A log that cannot be written must not stop the VM: fall back to stderr.
      if (this.fd !== 2) this.fd = 2;
    }
  }
}

export class VmmLogger {
  readonly root: PinoLogger;
  private readonly dest = new LogDestination();
  private config: LoggerConfig | null = null;
  /** pino children keep the level they were created with, so configure() sets theirs too. */
  private readonly children: PinoLogger[] = [];

  constructor(id: string) {
    this.root = pino({
      level: 'warn',
      base: { id },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    }, this.dest);
  }

  /** A logger whose lines carry `origin` (shown with show_log_origin). */
  component(origin: string): PinoLogger {
    const child = this.root.child({ origin });
    this.children.push(child);
    return child;
  }

  /** Applies PUT /logger: opens the new file first, so a bad path changes nothing. */
  configure(cfg: LoggerConfig): void {
    const level = LEVELS[(cfg.level ?? 'Info').toLowerCase()];
    if (!level) throw new LoggerConfigError(`unknown log level "${cfg.level}"`);
    let fd = 2;
    if (cfg.log_path !== undefined) {
      try {
        fd = fs.openSync(cfg.log_path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK, 0o644);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EISDIR') throw new LoggerConfigError(`log file "${cfg.log_path}" is a directory`);
        throw new LoggerConfigError(`log file "${cfg.log_path}" cannot be opened: ${(e as Error).message}`);
      }
    }
    if (this.dest.fd !== 2) fs.closeSync(this.dest.fd);
    this.dest.fd = fd;
    this.dest.showLevel = cfg.show_level ?? false;
    this.dest.showOrigin = cfg.show_log_origin ?? false;
    this.root.level = level;
    for (const c of this.children) c.level = level;
    this.config = { ...cfg };
  }

  /** The last PUT /logger body, for GET /vm/config. */
  get current(): LoggerConfig | null { return this.config; }

  close(): void {
    if (this.dest.fd !== 2) fs.closeSync(this.dest.fd);
    this.dest.fd = 2;
  }
}
