/**
 * The docker/ deployment, checked without a container engine: compose structure (services, images
 * or build contexts, ports, volumes pointing at files that exist), the collector config against the
 * collector's own schema, Prometheus config with `promtool check config`, Dockerfile hygiene, and
 * the mosquitto config, password file and ACL run for real on a loopback port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../collector/src/config.js';
import { runPromtool } from './helpers/promtool.js';

const DOCKER = fileURLToPath(new URL('../docker/', import.meta.url));
const REPO = resolve(DOCKER, '..');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  ports?: string[];
  volumes?: string[];
  command?: string[];
  entrypoint?: string[];
  depends_on?: string[];
  environment?: Record<string, string>;
}
const compose = parse(readFileSync(join(DOCKER, 'compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const svc = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`compose.yml has no service ${name}`);
  return s;
};

/** Bind mounts of a service as { source (absolute), target }; named volumes have source undefined. */
function mounts(s: Service): { source?: string; name?: string; target: string }[] {
  return (s.volumes ?? []).map((v) => {
    const [src = '', target = ''] = v.split(':');
    return src.startsWith('.') || src.startsWith('/')
      ? { source: resolve(DOCKER, src), target }
      : { name: src, target };
  });
}

/** The repo file mounted at `containerPath` (directly or inside a mounted directory). */
function hostPathOf(s: Service, containerPath: string): string | undefined {
  for (const m of mounts(s)) {
    if (!m.source) continue;
    if (containerPath === m.target) return m.source;
    if (containerPath.startsWith(`${m.target}/`)) return join(m.source, containerPath.slice(m.target.length + 1));
  }
  return undefined;
}

function dockerfile(name: string): string {
  return readFileSync(join(DOCKER, name), 'utf8');
}

/** Directives of a mosquitto config, `key value` per line, comments dropped. */
function mosquittoConf(text: string): [string, string][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const i = l.indexOf(' ');
      return [l.slice(0, i), l.slice(i + 1)] as [string, string];
    });
}

const scratch: string[] = [];
const children: ChildProcess[] = [];
const clients: MqttClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  for (const child of children) child.kill('SIGKILL');
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe('docker compose deployment', () => {
  it('has the broker, collector, simulated fleet, Prometheus and Grafana', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'collector',
      'fleet-sim',
      'grafana',
      'mosquitto',
      'prometheus',
    ]);
    expect(svc('mosquitto').image).toBe('eclipse-mosquitto:2');
    expect(svc('prometheus').image).toMatch(/^prom\/prometheus:v\d/);
    expect(svc('grafana').image).toMatch(/^grafana\/grafana:\d/);
    // The simulated fleet ships in the agent image and speaks to mosquitto like real agents.
    expect(svc('fleet-sim').build?.dockerfile).toBe('docker/Dockerfile.agent');
    const entry = svc('fleet-sim').entrypoint?.join(' ') ?? '';
    expect(entry).toContain('agent/dist/simfleet-cli.js');
    expect(existsSync(join(REPO, 'agent/src/simfleet-cli.ts'))).toBe(true);
    expect(svc('fleet-sim').command).toEqual(expect.arrayContaining(['--broker-url', 'mqtt://mosquitto:1883']));
  });

  it('builds images from Dockerfiles that exist, with the repository as context', () => {
    const build = svc('collector').build;
    expect(build).toBeDefined();
    expect(resolve(DOCKER, build!.context)).toBe(REPO);
    expect(existsSync(join(REPO, build!.dockerfile))).toBe(true);
    expect(existsSync(join(DOCKER, 'Dockerfile.agent'))).toBe(true);
  });

  it('publishes the expected ports', () => {
    const published = (name: string) => (svc(name).ports ?? []).map((p) => p.split(':').map(Number));
    expect(published('mosquitto')).toEqual([[1883, 1883]]);
    expect(published('collector')).toEqual([[8080, 8080]]);
    expect(published('prometheus')).toEqual([[9090, 9090]]);
    expect(published('grafana')).toEqual([[3000, 3000]]);
    expect(svc('fleet-sim').ports).toBeUndefined();
  });

  it('mounts only files that exist, and declares every named volume', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const m of mounts(s)) {
        if (m.source) expect(existsSync(m.source), `${name}: ${m.source}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: volume ${m.name}`).toContain(m.name);
      }
    }
    for (const name of ['mosquitto-data', 'collector-data', 'prometheus-data', 'grafana-data']) {
      expect(Object.keys(compose.volumes)).toContain(name);
    }
  });

  it('configures the collector for the external broker, valid against its own schema', () => {
    const collector = svc('collector');
    const file = hostPathOf(collector, '/etc/hashwatch/collector.yaml');
    expect(file).toBeDefined();
    expect(collector.command).toEqual(['run', '--config', '/etc/hashwatch/collector.yaml']);
    const config = parseConfig(readFileSync(file!, 'utf8'), file!);
    expect(config.broker.mode).toBe('external');
    expect(config.broker.external.url).toBe('mqtt://mosquitto:1883');
    expect(config.http.host).toBe('0.0.0.0');
    expect(config.http.port).toBe(8080);
    // The data lives on the named volume, and the password file is mounted where the config says.
    expect(mounts(collector).find((m) => m.name === 'collector-data')?.target).toBe(config.data_dir);
    expect(config.store.path.startsWith(`${config.data_dir}/`)).toBe(true);
    const pw = hostPathOf(collector, config.broker.external.password_file);
    expect(pw && readFileSync(pw, 'utf8').trim().length).toBeGreaterThan(0);
  });

  it('Prometheus scrapes the collector and loads the alert rules (promtool check config)', () => {
    const prom = svc('prometheus');
    const cfgPath = hostPathOf(prom, '/etc/prometheus/prometheus.yml');
    expect(cfgPath).toBe(join(DOCKER, 'prometheus/prometheus.yml'));
    const cfg = parse(readFileSync(cfgPath!, 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs?: { targets: string[] }[] }[];
    };
    for (const rules of cfg.rule_files) {
      expect(hostPathOf(prom, join('/etc/prometheus', rules))).toBe(join(DOCKER, 'prometheus', rules));
    }
    expect(cfg.rule_files).toContain('alerts.yml');
    const job = cfg.scrape_configs.find((j) => j.job_name === 'hashwatch-collector');
    // The alert rules select this job name.
    expect(readFileSync(join(DOCKER, 'prometheus/alerts.yml'), 'utf8')).toContain('job="hashwatch-collector"');
    expect(job?.static_configs?.[0]?.targets).toEqual(['collector:8080']);
    expect(cfg.scrape_configs.some((j) => j.job_name === 'hashwatch-agent')).toBe(true);
    const res = runPromtool(['check', 'config', cfgPath!]);
    expect(res.status, res.stdout + res.stderr).toBe(0);
    // Warnings (e.g. a file_sd glob matching nothing) count as failures too.
    expect(res.stdout + res.stderr).not.toContain('WARNING');
  });

  it('Grafana gets the provisioning and the dashboards where the provider looks', () => {
    const grafana = svc('grafana');
    expect(hostPathOf(grafana, '/etc/grafana/provisioning/datasources')).toBe(
      join(DOCKER, 'grafana/provisioning/datasources'),
    );
    expect(hostPathOf(grafana, '/etc/grafana/provisioning/dashboards')).toBe(
      join(DOCKER, 'grafana/provisioning/dashboards'),
    );
    const provider = parse(readFileSync(join(DOCKER, 'grafana/provisioning/dashboards/hashwatch.yml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    const dashboards = hostPathOf(grafana, provider.providers[0]!.options.path);
    expect(dashboards && existsSync(join(dashboards, 'hashwatch.json'))).toBe(true);
  });
});

describe('Dockerfiles', () => {
  for (const name of ['Dockerfile.collector', 'Dockerfile.agent']) {
    it(`${name}: multi-stage, slim runtime, non-root, production deps per workspace`, () => {
      const text = dockerfile(name);
      const froms = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)];
      expect(froms.length).toBeGreaterThanOrEqual(2);
      expect(froms[0]?.[1]).toBe('node:20-bookworm');
      expect(froms.at(-1)?.[1]).toBe('node:20-bookworm-slim');
      expect(text).toMatch(/apt-get install[^\n]*python3 make g\+\+/);
      expect(text).toMatch(/npm ci --omit=dev[^\n]*--workspace @hashwatch\/(collector|agent)/);
      // The last USER of the final stage is not root.
      const finalStage = text.slice(text.lastIndexOf('\nFROM '));
      const users = [...finalStage.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
      expect(users.length).toBeGreaterThan(0);
      expect(['root', '0', '0:0']).not.toContain(users.at(-1));
      // npm ci refuses a lockfile whose workspaces are missing: every workspace manifest goes in.
      const workspaces = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { workspaces: string[] })
        .workspaces;
      for (const ws of workspaces)
        expect(text, `${name}: COPY ${ws}/package.json`).toContain(`COPY ${ws}/package.json`);
      // Every COPY from the build context names something that exists in the repository.
      for (const m of text.matchAll(/^COPY\s+(?!--from)(.+)$/gm)) {
        const parts = (m[1] ?? '').trim().split(/\s+/);
        for (const src of parts.slice(0, -1)) expect(existsSync(join(REPO, src)), `${name}: COPY ${src}`).toBe(true);
      }
    });
  }

  it('the collector image checks /healthz', () => {
    expect(dockerfile('Dockerfile.collector')).toMatch(/^HEALTHCHECK[\s\S]*\/healthz/m);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as { port: number };
  await new Promise<void>((res) => server.close(() => res()));
  return port;
}

function findMosquitto(): string {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'])
    if (existsSync(p)) return p;
  throw new Error('mosquitto not found: install the Debian package "mosquitto" (npm run setup:test does it)');
}

async function connect(port: number, username: string, password: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    username,
    password,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  clients.push(client);
  return client;
}

describe('mosquitto config, password file and ACL', () => {
  const mosq = svc('mosquitto');
  const confPath = hostPathOf(mosq, '/mosquitto/config/mosquitto.conf')!;
  const directives = mosquittoConf(readFileSync(confPath, 'utf8'));
  const get = (key: string) => directives.find(([k]) => k === key)?.[1];

  it('refers to a password file and an ACL that are mounted from the repository', () => {
    expect(get('allow_anonymous')).toBe('false');
    for (const key of ['password_file', 'acl_file']) {
      const file = hostPathOf(mosq, get(key) ?? '');
      expect(file && existsSync(file), key).toBe(true);
    }
    expect(hostPathOf(mosq, get('persistence_location') ?? '')).toBeUndefined();
    expect(mounts(mosq).find((m) => m.name === 'mosquitto-data')?.target).toBe('/mosquitto/data');
  });

  it('every ACL user has a password, and the collector user matches collector.yaml', () => {
    const passwd = readFileSync(hostPathOf(mosq, get('password_file')!)!, 'utf8');
    const users = new Set(
      passwd
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')[0]),
    );
    const acl = readFileSync(hostPathOf(mosq, get('acl_file')!)!, 'utf8');
    const aclUsers = [...acl.matchAll(/^user\s+(\S+)/gm)].map((m) => m[1]);
    for (const u of aclUsers) expect(users.has(u), u).toBe(true);
    const config = parse(readFileSync(join(DOCKER, 'collector/collector.yaml'), 'utf8')) as {
      broker: { external: { username: string } };
    };
    expect(aclUsers).toContain(config.broker.external.username);
  });

  it('runs for real: credentials accepted or refused, each user held to its ACL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hashwatch-mosquitto-'));
    scratch.push(dir);
    const port = await freePort();
    // Same file, but a loopback listener on a free port, the repo's passwd/ACL, and no persistence.
    const conf = readFileSync(confPath, 'utf8')
      .replace(/^listener .*$/m, `listener ${port} 127.0.0.1`)
      .replace(/^password_file .*$/m, `password_file ${hostPathOf(mosq, get('password_file')!)}`)
      .replace(/^acl_file .*$/m, `acl_file ${hostPathOf(mosq, get('acl_file')!)}`)
      .replace(/^persistence true$/m, 'persistence false')
      .replace(/^persistence_location .*$/m, '');
    writeFileSync(join(dir, 'mosquitto.conf'), conf);
    const child = spawn(findMosquitto(), ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let log = '';
    child.stdout?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });

    const collectorPassword = readFileSync(join(DOCKER, 'collector/mqtt-password'), 'utf8').trim();
    const simPassword = readFileSync(join(DOCKER, 'mosquitto/sim-password'), 'utf8').trim();
    let collector: MqttClient | undefined;
    for (let i = 0; i < 50 && !collector; i++) {
      try {
        collector = await connect(port, 'hashwatch-collector', collectorPassword);
      } catch {
        if (child.exitCode !== null) throw new Error(`mosquitto exited: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(collector, `collector could not connect; mosquitto log:\n${log}`).toBeDefined();
    await collector!.subscribeAsync('hw/v1/+/+/report', { qos: 1 });
    const received: string[] = [];
    collector!.on('message', (topic) => received.push(topic));

    await expect(connect(port, 'hashwatch-collector', 'wrong-password')).rejects.toThrow();

    const sim = await connect(port, 'hashwatch-sim', simPassword);
    await sim.publishAsync('hw/v1/south/h9/report', '{}', { qos: 1 });
    const agent = await connect(port, 'north.rack-a', 'agent-demo-password');
    await agent.publishAsync('hw/v1/north/rack-a/report', '{}', { qos: 1 });
    // Not its host: mosquitto must not deliver it (MQTT 5 answers PUBACK "not authorized").
    await agent.publishAsync('hw/v1/north/rack-b/report', '{}', { qos: 1 }).catch(() => undefined);
    // A marker after the denied publish: once it arrives, the denied one would have too.
    await sim.publishAsync('hw/v1/zz/marker/report', '{}', { qos: 1 });
    for (let i = 0; i < 50 && !received.includes('hw/v1/zz/marker/report'); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(received).toEqual(['hw/v1/south/h9/report', 'hw/v1/north/rack-a/report', 'hw/v1/zz/marker/report']);
    expect(dirname(confPath)).toBe(join(DOCKER, 'mosquitto'));
  });
});
