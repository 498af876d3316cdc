import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Uart16550, UartReg, Ier, Iir, Fcr, Lcr, Lsr, Mcr, Msr } from '../src/devices/uart16550.js';

function setup() {
  const irqEvents: boolean[] = [];
  const output: number[] = [];
  const uart = new Uart16550({ set: (level) => irqEvents.push(level) }, (byte) => output.push(byte));
  const rd = (reg: UartReg) => uart.read(reg, 1);
  const wr = (reg: UartReg, value: number) => uart.write(reg, 1, value);
  const irq = () => irqEvents.at(-1) ?? false;
  return { uart, rd, wr, irq, irqEvents, output };
}

const FIFO_TRIGGER_4 = 0x40;

test('reset state: THR empty, no interrupt, modem lines up', () => {
  const { rd } = setup();
  assert.equal(rd(UartReg.Lsr), Lsr.ThrEmpty | Lsr.TransmitterEmpty);
  assert.equal(rd(UartReg.IirFcr), Iir.NoInterrupt);
  assert.equal(rd(UartReg.Ier), 0);
  assert.equal(rd(UartReg.Msr), Msr.Dcd | Msr.Dsr | Msr.Cts);
  assert.equal(rd(UartReg.Mcr), Mcr.Out2);
  assert.equal(rd(UartReg.Data), 0, 'empty receiver reads 0');
});

test('DLAB switches offsets 0 and 1 to the divisor latch', () => {
  const { rd, wr, output } = setup();
  wr(UartReg.Ier, Ier.ReceivedData);
  wr(UartReg.Lcr, Lcr.Dlab | 0x03);
  wr(UartReg.Data, 0x01);
  wr(UartReg.Ier, 0x02);
  assert.equal(rd(UartReg.Data), 0x01);
  assert.equal(rd(UartReg.Ier), 0x02);
  assert.deepEqual(output, [], 'DLL writes are not transmitted');
  wr(UartReg.Lcr, 0x03);
  assert.equal(rd(UartReg.Lcr), 0x03);
  assert.equal(rd(UartReg.Ier), Ier.ReceivedData, 'IER kept its value under the latch');
  wr(UartReg.Data, 0x41);
  assert.deepEqual(output, [0x41]);
  wr(UartReg.Lcr, Lcr.Dlab);
  assert.equal(rd(UartReg.Data), 0x01, 'divisor kept');
});

test('scratch register holds a byte; IER keeps only its four bits', () => {
  const { rd, wr } = setup();
  wr(UartReg.Scr, 0x5a);
  assert.equal(rd(UartReg.Scr), 0x5a);
  wr(UartReg.Ier, 0xff);
  assert.equal(rd(UartReg.Ier), 0x0f);
});

test('THRE interrupt dance as the 8250 driver performs it', () => {
  const { rd, wr, irq, output } = setup();
  wr(UartReg.IirFcr, Fcr.Enable);
  assert.equal(irq(), false);

  // The driver's startup test: enable THRI, read IIR, disable, enable, read IIR again.
  wr(UartReg.Ier, Ier.ThrEmpty);
  assert.equal(irq(), true, 'enabling ETBEI with THR empty raises THRE');
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.ThrEmpty);
  assert.equal(irq(), false, 'reading IIR that reports THRE acknowledges it');
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.NoInterrupt);
  wr(UartReg.Ier, Ier.ThrEmpty); // unchanged: no re-trigger
  assert.equal(irq(), false);
  wr(UartReg.Ier, 0);
  wr(UartReg.Ier, Ier.ThrEmpty);
  assert.equal(irq(), true, 're-enabling re-asserts THRE');
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.ThrEmpty);

  // Transmitting: writing THR clears the interrupt, the byte leaves at once, THRE again.
  wr(UartReg.Data, 0x68);
  assert.deepEqual(output, [0x68]);
  assert.equal(irq(), true);
  assert.equal(rd(UartReg.Lsr) & (Lsr.ThrEmpty | Lsr.TransmitterEmpty), Lsr.ThrEmpty | Lsr.TransmitterEmpty);

  // Stopping TX: clearing ETBEI drops the line.
  wr(UartReg.Ier, 0);
  assert.equal(irq(), false);
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.NoInterrupt);
});

test('RX FIFO: character timeout below the trigger level, data available at it', () => {
  const { uart, rd, wr, irq } = setup();
  wr(UartReg.IirFcr, Fcr.Enable | FIFO_TRIGGER_4);
  wr(UartReg.Ier, Ier.ReceivedData);
  uart.receive(new Uint8Array([1, 2, 3]));
  assert.equal(irq(), true);
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.CharTimeout);
  uart.receive(new Uint8Array([4]));
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.ReceivedData);
  assert.equal(rd(UartReg.Lsr) & Lsr.DataReady, Lsr.DataReady);
  assert.deepEqual([1, 2, 3, 4].map(() => rd(UartReg.Data)), [1, 2, 3, 4]);
  assert.equal(rd(UartReg.Lsr) & Lsr.DataReady, 0);
  assert.equal(irq(), false);
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.NoInterrupt);
});

test('received data does not interrupt while ERBFI is clear, but LSR shows it', () => {
  const { uart, rd, wr, irq } = setup();
  wr(UartReg.IirFcr, Fcr.Enable);
  uart.receive(new Uint8Array([0x61]));
  assert.equal(irq(), false);
  assert.equal(rd(UartReg.Lsr) & Lsr.DataReady, Lsr.DataReady);
  wr(UartReg.Ier, Ier.ReceivedData);
  assert.equal(irq(), true);
  assert.equal(rd(UartReg.Data), 0x61);
  assert.equal(irq(), false);
});

test('pasted input larger than the FIFO is delivered completely and in order', () => {
  const { uart, rd, wr } = setup();
  wr(UartReg.IirFcr, Fcr.Enable | 0xc0);
  const text = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff);
  uart.receive(text.subarray(0, 3000));
  uart.receive(text.subarray(3000));
  const got: number[] = [];
  while (rd(UartReg.Lsr) & Lsr.DataReady) got.push(rd(UartReg.Data));
  assert.deepEqual(got, [...text]);
  assert.equal(rd(UartReg.Lsr) & Lsr.Overrun, 0, 'host input never overruns');
});

test('canReceive applies backpressure once a large backlog is queued', () => {
  const { uart, rd } = setup();
  assert.equal(uart.canReceive(), true);
  uart.receive(new Uint8Array(70_000));
  assert.equal(uart.canReceive(), false);
  for (let i = 0; i < 10_000; i++) rd(UartReg.Data);
  assert.equal(uart.canReceive(), true);
});

test('without FIFOs the receiver holds one byte and IIR has no FIFO bits', () => {
  const { uart, rd, wr } = setup();
  wr(UartReg.Ier, Ier.ReceivedData);
  uart.receive(new Uint8Array([7, 8]));
  assert.equal(rd(UartReg.IirFcr), Iir.ReceivedData);
  assert.equal(rd(UartReg.Data), 7);
  assert.equal(rd(UartReg.Data), 8);
  assert.equal(rd(UartReg.IirFcr), Iir.NoInterrupt);
});

test('FCR clears the receive FIFO; queued host input refills it', () => {
  const { uart, rd, wr } = setup();
  wr(UartReg.IirFcr, Fcr.Enable);
  uart.receive(new Uint8Array(20).map((_, i) => i));
  wr(UartReg.IirFcr, Fcr.Enable | Fcr.ClearRx);
  assert.equal(rd(UartReg.Data), 16, 'the 16 bytes in the FIFO were dropped, the rest follows');
});

test('loopback: transmitted bytes come back, modem outputs drive the inputs', () => {
  const { uart, rd, wr, output } = setup();
  wr(UartReg.IirFcr, Fcr.Enable);
  // The Linux autoconfig probe: LOOP | OUT2 | RTS must read back as DCD | CTS.
  wr(UartReg.Mcr, Mcr.Loopback | Mcr.Out2 | Mcr.Rts);
  assert.equal(rd(UartReg.Msr) & 0xf0, Msr.Dcd | Msr.Cts);
  wr(UartReg.Mcr, Mcr.Loopback | Mcr.Out1 | Mcr.Dtr);
  assert.equal(rd(UartReg.Msr), Msr.Ri | Msr.Dsr | Msr.DeltaDcd | Msr.DeltaCts | Msr.DeltaDsr);
  assert.equal(rd(UartReg.Msr) & 0x0f, 0, 'reading MSR clears the deltas');
  wr(UartReg.Mcr, Mcr.Loopback);
  assert.equal(rd(UartReg.Msr), Msr.TrailingEdgeRi | Msr.DeltaDsr);

  uart.receive(new Uint8Array([0x99]));
  wr(UartReg.Data, 0x42);
  assert.deepEqual(output, [], 'nothing leaves in loopback');
  assert.equal(rd(UartReg.Data), 0x42);
  assert.equal(rd(UartReg.Lsr) & Lsr.DataReady, 0, 'host input is disconnected in loopback');
  wr(UartReg.Mcr, Mcr.Out2);
  assert.equal(rd(UartReg.Data), 0x99, 'and arrives once loopback ends');
});

test('IIR reports the highest-priority cause: line status, data, THRE, modem status', () => {
  const { rd, wr, irq } = setup();
  wr(UartReg.IirFcr, Fcr.Enable | FIFO_TRIGGER_4);
  wr(UartReg.Mcr, Mcr.Loopback); // modem lines drop: delta bits latch
  for (let i = 0; i < 17; i++) wr(UartReg.Data, i); // one more than the FIFO holds
  wr(UartReg.Ier, Ier.ReceivedData | Ier.ThrEmpty | Ier.LineStatus | Ier.ModemStatus);
  assert.equal(irq(), true);

  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.LineStatus);
  const lsr = rd(UartReg.Lsr);
  assert.equal(lsr & (Lsr.Overrun | Lsr.DataReady), Lsr.Overrun | Lsr.DataReady);
  assert.equal(rd(UartReg.Lsr) & Lsr.Overrun, 0, 'reading LSR clears overrun');

  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.ReceivedData);
  const received: number[] = [];
  while (rd(UartReg.Lsr) & Lsr.DataReady) received.push(rd(UartReg.Data));
  assert.deepEqual(received, Array.from({ length: 16 }, (_, i) => i), 'the 17th byte was lost');

  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.ThrEmpty);
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.ModemStatus);
  rd(UartReg.Msr);
  assert.equal(rd(UartReg.IirFcr), Iir.FifosEnabled | Iir.NoInterrupt);
  assert.equal(irq(), false);
});

test('the interrupt line is only driven on changes', () => {
  const { uart, wr, irqEvents } = setup();
  wr(UartReg.IirFcr, Fcr.Enable);
  wr(UartReg.Ier, Ier.ReceivedData);
  uart.receive(new Uint8Array([1]));
  uart.receive(new Uint8Array([2]));
  uart.receive(new Uint8Array([3]));
  assert.deepEqual(irqEvents, [true]);
});

test('accesses past the eight registers are ignored', () => {
  const { uart, rd, wr, output } = setup();
  uart.write(8, 1, 0x41);
  uart.write(0xff, 1, 0x41);
  assert.equal(uart.read(9, 1), 0);
  assert.deepEqual(output, []);
  wr(UartReg.Lsr, 0);
  assert.equal(rd(UartReg.Lsr), Lsr.ThrEmpty | Lsr.TransmitterEmpty, 'LSR writes ignored');
});
