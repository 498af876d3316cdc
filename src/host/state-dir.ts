/** Where the host keeps its state when no --state-dir is given (also how `vessel vm` finds it). */
import * as os from 'node:os';
import * as path from 'node:path';

/** $VESSEL_STATE_DIR, else /var/lib/vessel for root (libvirt's habit), else $XDG_STATE_HOME/vessel or ~/.local/state/vessel. */
export function defaultStateDir(): string {
  if (process.env['VESSEL_STATE_DIR']) return path.resolve(process.env['VESSEL_STATE_DIR']);
  if (process.getuid?.() === 0) return '/var/lib/vessel';
  const xdg = process.env['XDG_STATE_HOME'];
  return path.join(xdg && xdg.length > 0 ? xdg : path.join(os.homedir(), '.local', 'state'), 'vessel');
}
