import { call } from './ipc';
import type {
  BlockView,
  ChartView,
  IncidentDetailView,
  IncidentListQuery,
  IncidentView,
  MonitorRunView,
  SavedFile,
} from './types';

/** The review queue: most severe first, then oldest. */
export function incidentsList(req: IncidentListQuery): Promise<IncidentView[]> {
  return call<IncidentView[]>('incidents_list', { req });
}

export function incidentShow(req: { id: string }): Promise<IncidentDetailView> {
  return call<IncidentDetailView>('incident_show', { req });
}

/** Acts on an incident (`assign`, `lift-block`, `extend-block:24`…); returns it as it is now. */
export function incidentAct(req: { id: string; action: string; reason: string | null }): Promise<IncidentDetailView> {
  return call<IncidentDetailView>('incident_act', { req });
}

/** Address blocks in force, or all of them. */
export function blocksList(req: { all: boolean }): Promise<BlockView[]> {
  return call<BlockView[]>('blocks_list', { req });
}

/** Blocks an address for `hours` (none: until lifted); returns the block's id. */
export function blockAdd(req: { ip: string; hours: number | null; reason: string }): Promise<string> {
  return call<string>('block_add', { req });
}

/** Lifts a block by id (or every block of an address); returns how many were lifted. */
export function blockRemove(req: { which: string }): Promise<number> {
  return call<number>('block_remove', { req });
}

/** Runs the detectors now; the queue hears of it through `incidents-changed`. */
export function monitorRun(): Promise<MonitorRunView> {
  return call<MonitorRunView>('monitor_run');
}

/** One dashboard chart over the last 7, 30 or 90 days, drawn as SVG. */
export function dashboardChart(req: {
  kind: string;
  days: number;
  width: number | null;
  theme: 'light' | 'dark' | null;
}): Promise<ChartView> {
  return call<ChartView>('dashboard_chart', { req });
}

/** Saves a chart as PNG in `out_dir` (none: Downloads). */
export function dashboardChartExport(req: { kind: string; days: number; out_dir: string | null }): Promise<SavedFile> {
  return call<SavedFile>('dashboard_chart_export', { req });
}
