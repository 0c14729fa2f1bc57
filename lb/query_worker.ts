// Worker thread of the load balancer's query analysis: large queries are parsed, checked and printed
// here so the grammar's parser never holds the event loop (small ones are analysed inline).

/// <reference lib="deno.worker" />

import { analyseAll, type QueryAnalysis, type QueryShape } from "./promql_access.ts";

/** One analysis to run. */
export interface AnalysisRequest {
  id: number;
  queries: string[];
  label: string;
  shape: QueryShape;
}

/** Its result (id 0, without an analysis: the worker has loaded). */
export interface AnalysisReply {
  id: number;
  analysis?: QueryAnalysis;
}

self.onmessage = (e: MessageEvent<AnalysisRequest>) => {
  const { id, queries, label, shape } = e.data;
  self.postMessage({ id, analysis: analyseAll(queries, label, shape) } satisfies AnalysisReply);
};

// Loaded: the analyser tells a worker still starting (slow) from a stuck one.
self.postMessage({ id: 0 });
