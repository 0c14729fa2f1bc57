// The messages between the load balancer and its database ownership Worker: questions, answers, the
// start-up message, and the first message that tells the worker where the database is.

/** A question for the worker. */
export type OwnershipQuestion =
  | { op: "owns"; user: string; clusterId: string; uuids: string[] }
  | { op: "isAdmin"; user: string }
  | { op: "clusterIds" };

/** A question as posted, with the id its answer carries. */
export type OwnershipRequest = OwnershipQuestion & { id: number };

/** Why a question could not be answered: the file is unreadable, or the database unusable for now. */
export type OwnershipFailure = "permission" | "unavailable";

/** The worker's answer (id 0: the worker has loaded and takes questions). */
export type OwnershipReply =
  | { id: number; ok: true; value: boolean | string[] }
  | { id: number; ok: false; kind: OwnershipFailure; error: string };

/** Id of the message a worker posts once loaded. */
export const READY_ID = 0;

/** First message: where the database is and how long SQLite may wait on a lock. */
export interface OwnershipWorkerInit {
  dbPath: string;
  busyTimeoutMs: number;
}
