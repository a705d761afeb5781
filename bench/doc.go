// Package bench is domicile's load generator: it drives a deployment over
// HTTP with a mix of requests, with a fixed number of workers or at a
// fixed arrival rate, and reports throughput, latency percentiles from a
// log-linear histogram, errors by kind and the server's CPU time and
// memory, as a table and as JSON.
//
// # Coordinated omission
//
// With fixed workers, each worker sends its next request only when the
// previous one has answered. A server that stalls for 200 ms then
// receives fewer requests during the stall, and the stall shows in one
// sample per worker instead of in every request that would have been
// sent: the percentiles understate it ("coordinated omission", after Gil
// Tene). Fixed-worker reports say so. At a fixed rate, request i is due at
// start + i/rate whatever happened before, and its latency is measured
// from that intended start, so time spent waiting for a free worker or a
// stalled server counts.
//
// # Baseline
//
// The same mixes run against the raw baseline of package
// [domicile/bench/baseline], which serves the same routes with only HTTP,
// JSON and the same store, so every report can state domicile as a ratio
// of what the machine does without domicile's work.
//
// # The generator's client
//
// The load generator shares the machine with the server it measures, so
// the record operations go through [LeanClient], an HTTP/1.1 client that
// writes requests from precomputed bytes over one kept-alive connection
// per worker and parses answers only for their status, framing and a
// cheap check that they hold the record ([LeanConn.GetRecord] says
// which). Without Config.Lean, and for object operations, requests go
// through httpapi.Client over net/http. Each Result names its client.
//
// # Adding a mix
//
// A mix is one entry in [Mixes]: weighted [Op] values and an optional
// Prepare that writes what the operations read.
package bench
