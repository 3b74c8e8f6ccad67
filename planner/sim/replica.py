"""One serving replica as a discrete-event process: continuous batching (the default) or static batching.

Both advance in *steps* whose times come from `StepTables` (the planner's perf model); neither walks tokens of a
request one at a time. A replica is driven by `advance_until(t)`: it runs steps until its clock reaches t (the
next arrival the fleet will hand out), ending on the first step boundary at or after t, so a request that
arrives at t is considered at the start of the replica's next step — as a serving engine's scheduler sees it.

Continuous batching (vLLM/SGLang/TensorRT-LLM in-flight batching), per step:
 1. admit waiting requests first-come first-served while fewer than `max_running` sequences run and the KV cache
    has room for the prompt (keeping `ADMISSION_WATERMARK_FRACTION` free);
 2. if the running sequences' next tokens do not fit in the KV cache, preempt the newest (its KV is freed and it
    returns to the head of the queue; on readmission it recomputes prompt + generated tokens — vLLM's default
    recompute preemption);
 3. chunked prefill: every decoding sequence takes its token(s) out of the step's token budget
    (`max_batched_tokens`), prompts being prefilled take the rest in admission order. A step with prefill work
    is one forward pass: the decode cycle of the running sequences plus what the chunks add to it
    (`StepTables.mixed_extra_s`, the mixed step `perf/batching.py` charges in steady state). With
    `prefill_first` (PerfParams) a step with prompts runs only them, each costing its share of its prefill time,
    and the decoders wait;
 4. steps with no prefill work and nothing to admit are identical up to context growth, so they are taken in one
    vectorized stretch up to the next event (a sequence finishing, the KV cache filling, or the next arrival when
    a slot is free).
A request's first token is produced by its prefill (emitted after pipeline fill, `StepTables.prefill_fill_s`);
each later token by a decode step. With speculative decoding each running sequence gains 1 + (number of leading
accepted draft tokens) per step: γ independent acceptance draws with probability α, as `perf/specdec.py` assumes.

Static batching (the pre-Orca baseline): wait until `max_running` requests are queued (or the oldest has waited
`timeout_s`), prefill them all, then decode the whole batch in lock-step until its longest output is done; finished
sequences keep their slot (padding) and new requests wait for the next batch. Each slot reserves KV for the
batch's longest prompt + output."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .tables import StepTables

# vLLM's block manager keeps 1 % of KV blocks free when admitting (BlockSpaceManager watermark=0.01), so a newly
# admitted prompt does not immediately force a preemption.
ADMISSION_WATERMARK_FRACTION = 0.01
# Longest stretch of identical decode steps taken at once (bounds the arrays of one stretch; any value gives the
# same result, as a stretch also ends at every event).
MAX_STRETCH_STEPS = 4096
# Draw block for speculative acceptance: steps drawn at once per stretch.
SPEC_STRETCH_STEPS = 64


@dataclass(slots=True)
class Prefill:
    """A prompt a continuous-batching replica is prefilling, chunk by chunk."""

    request: int
    prompt_tokens: int  # L: the prompt, plus the tokens generated before a preemption (recomputed on readmission)
    done_tokens: int  # prompt tokens computed so far
    busy_s: float  # replica time the whole prompt takes alone (prefill-first charges k/L of it per k-token chunk)
    fill_s: float  # pipeline fill: how much later than its last chunk's step the first token comes out


def accepted_draft_tokens(rng: np.random.Generator, tables: StepTables, size) -> np.ndarray:
    """Leading accepted draft tokens of speculative-decoding rounds (one per element of `size`): γ independent
    acceptances with probability α, counted up to the first rejection, min(Geometric(1 − α) − 1, γ) — the
    acceptance model of perf/specdec.py. A round gains this + 1 tokens."""
    return np.minimum(rng.geometric(1.0 - tables.acceptance, size=size) - 1, tables.draft_length)


@dataclass
class Book:
    """Per-request state shared by the replicas of a fleet (one array entry per request)."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    first_token_s: np.ndarray = field(init=False)
    finish_s: np.ndarray = field(init=False)
    admitted_s: np.ndarray = field(init=False)  # first time a replica scheduled it
    generated: np.ndarray = field(init=False)  # tokens generated so far (kept up to date for queued requests)
    fill_s: np.ndarray = field(init=False)  # pipeline fill: how long after a step boundary its tokens come out
    replica: np.ndarray = field(init=False)
    preempted_at_s: list[float] = field(default_factory=list)
    readmitted_at_s: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.arrival_s.size
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.admitted_s = np.full(n, np.nan)
        self.generated = np.zeros(n, np.int64)
        self.fill_s = np.zeros(n)
        self.replica = np.full(n, -1, np.int64)


class ContinuousReplica:
    def __init__(self, tables: StepTables, book: Book, rng: np.random.Generator):
        self.tb, self.book, self.rng = tables, book, rng
        self.cap = tables.kv_capacity_tokens
        self.admit_cap = self.cap - int(ADMISSION_WATERMARK_FRACTION * self.cap)
        self.max_running = tables.max_running
        self.budget = tables.max_batched_tokens
        self.q = tables.tokens_per_step
        self.clock = 0.0
        self.busy_s = 0.0
        self.waiting: deque[int] = deque()
        self.prefilling: list[Prefill] = []  # oldest first
        self.ids = np.empty(0, np.int64)  # decoding sequences, oldest admitted first
        self.rem = np.empty(0, np.int64)  # tokens each still has to generate
        self.ctx = np.empty(0, np.int64)  # KV tokens each holds
        self.ctx_sum = 0
        self.used = 0  # KV tokens held (decoding contexts + reserved prompts)
        self.kv_t: list[float] = [0.0]
        self.kv_used: list[int] = [0]
        self.steps = 0

    # ---- interface to the fleet ----------------------------------------------------------------------------
    def load(self) -> int:
        """Requests this replica holds (queued + running): what a least-loaded balancer compares."""
        return len(self.waiting) + len(self.prefilling) + self.ids.size

    def enqueue(self, request: int, now: float) -> None:
        if not self.prefilling and not self.ids.size:
            self.clock = max(self.clock, now)  # idle until now
        self.waiting.append(request)

    def advance_until(self, t: float) -> None:
        while self.clock < t and self._step(t):
            pass

    # ---- one step (or one stretch of identical decode steps) -------------------------------------------------
    def _step(self, t_next_arrival: float) -> bool:
        b = self.book
        running = len(self.prefilling) + self.ids.size
        # 1. admission, first come first served, leaving room for the decoding sequences' next tokens
        next_tokens = self.ids.size * self.q
        while self.waiting and running < self.max_running:
            r = self.waiting[0]
            L = int(b.input_tokens[r] + b.generated[r])
            if running and self.used + L + next_tokens > self.admit_cap:
                break
            self.waiting.popleft()
            self.prefilling.append(Prefill(r, L, 0, *self.tb.prefill_one(L)))
            self.used += L
            running += 1
            if b.generated[r] == 0 and math.isnan(b.admitted_s[r]):
                b.admitted_s[r] = self.clock
            else:
                b.readmitted_at_s.append(self.clock)
        if running == 0:
            return False
        # 2. room for the decoding sequences' next tokens, else preempt the newest
        n = self.ids.size
        if n:
            need = n if self.q == 1 else int(np.minimum(self.q, self.rem).sum())
            while self.used + need > self.cap and running > 1:
                self._preempt_newest()
                running -= 1
                n = self.ids.size
                need = n if self.q == 1 else int(np.minimum(self.q, self.rem).sum())
        # 3. chunked prefill within the step's token budget
        if self.prefilling and self.tb.prefill_first:
            # prefill-first: the step runs prompts only (up to the token budget) and the decoders wait for it
            budget, cost = self.budget, 0.0
            for item in self.prefilling:
                if budget <= 0:
                    break
                k = min(item.prompt_tokens - item.done_tokens, budget)
                budget -= k
                item.done_tokens += k
                cost += item.busy_s * k / item.prompt_tokens
            self._tick(cost)
            self._finish_prefills()
            self._record()
            return True
        if self.prefilling:
            budget = self.budget - n * self.q
            chunk = keys = cached = done = 0
            for item in self.prefilling:
                if budget <= 0:
                    break
                k = min(item.prompt_tokens - item.done_tokens, budget)
                budget -= k
                keys += k * (item.done_tokens + k / 2.0)  # causal: each chunk token attends its prefix
                cached += item.done_tokens
                item.done_tokens += k
                chunk += k
                done += item.done_tokens == item.prompt_tokens
            if chunk > 0:
                # one forward pass: the decode step plus what the chunks add to it (weights read once)
                dt = self.tb.mixed_extra_s(n, chunk, keys, cached, done) + (
                    self.tb.decode_step_s(n, self.ctx_sum / n) if n else 0.0)
                if n:
                    self._advance_decoders(self._tokens_one_step(), dt)
                else:
                    self._tick(dt)
                self._finish_prefills()
                self._record()
                return True
        # 4. a stretch of pure decode steps
        if n == 0:
            return False
        free_slot = not self.waiting and running < self.max_running
        self._decode_stretch(t_next_arrival if free_slot else math.inf)
        self._record()
        return True

    def _tick(self, dt: float) -> None:
        self.clock += dt
        self.busy_s += dt
        self.steps += 1

    def _tokens_one_step(self) -> np.ndarray | int:
        if self.q == 1:
            return 1
        return np.minimum(accepted_draft_tokens(self.rng, self.tb, self.ids.size) + 1, self.rem)

    def _advance_decoders(self, tokens, dt: float) -> None:
        """Every decoding sequence gains `tokens` (scalar or per sequence) in a step of dt seconds."""
        self._tick(dt)
        self.rem -= tokens
        self.ctx += tokens
        grown = self.ids.size * tokens if isinstance(tokens, int) else int(np.sum(tokens))
        self.ctx_sum += grown
        self.used += grown
        self._retire_finished()

    def _retire_finished(self) -> None:
        if self.rem.min() > 0:
            return
        done = self.rem <= 0
        ids = self.ids[done]
        self.book.finish_s[ids] = self.clock + self.book.fill_s[ids]
        freed = int(self.ctx[done].sum())
        self.ctx_sum -= freed
        self.used -= freed
        keep = ~done
        self.ids, self.rem, self.ctx = self.ids[keep], self.rem[keep], self.ctx[keep]

    def _finish_prefills(self) -> None:
        """Prompts whose last chunk ran in this step emit their first token and start decoding. Chunks go to
        prompts in admission order, so the finished ones are a prefix of `prefilling`."""
        b = self.book
        new_ids, new_rem, new_ctx = [], [], []
        while self.prefilling and self.prefilling[0].done_tokens == self.prefilling[0].prompt_tokens:
            item = self.prefilling.pop(0)
            r, L, fill = item.request, item.prompt_tokens, item.fill_s
            if b.generated[r] == 0:
                b.first_token_s[r] = self.clock + fill
                b.fill_s[r] = fill
            b.generated[r] += 1
            left = int(b.output_tokens[r] - b.generated[r])
            if left <= 0:
                b.finish_s[r] = self.clock + fill
                self.used -= L
                continue
            new_ids.append(r)
            new_rem.append(left)
            new_ctx.append(L)
            self.ctx_sum += L
        if new_ids:
            self.ids = np.concatenate([self.ids, np.asarray(new_ids, np.int64)])
            self.rem = np.concatenate([self.rem, np.asarray(new_rem, np.int64)])
            self.ctx = np.concatenate([self.ctx, np.asarray(new_ctx, np.int64)])

    def _preempt_newest(self) -> None:
        b = self.book
        if self.prefilling:
            item = self.prefilling.pop()
            r = item.request
            self.used -= item.prompt_tokens
        else:
            r = int(self.ids[-1])
            b.generated[r] = int(b.output_tokens[r] - self.rem[-1])
            c = int(self.ctx[-1])
            self.used -= c
            self.ctx_sum -= c
            self.ids, self.rem, self.ctx = self.ids[:-1], self.rem[:-1], self.ctx[:-1]
        self.waiting.appendleft(r)
        b.preempted_at_s.append(self.clock)

    def _decode_stretch(self, t_cut: float) -> None:
        """Take k ≥ 1 identical decode steps, stopping at the first sequence to finish, before the KV cache would
        overflow, or on the first step that ends at or after t_cut."""
        n = self.ids.size
        mean0 = self.ctx_sum / n
        min_rem = int(self.rem.min())
        kmax = min(min_rem, MAX_STRETCH_STEPS)
        need = n * self.q
        kmax = max(1, min(kmax, (self.cap - self.used) // need)) if self.q == 1 else kmax
        if math.isfinite(t_cut):
            first = self.tb.decode_step_s(n, mean0)
            # steps only get longer as contexts grow, so this many steps surely reach t_cut
            kmax = max(1, min(kmax, int((t_cut - self.clock) / first) + 1))
        if self.q == 1:
            times = self.tb.decode_time_s(n, mean0 + np.arange(kmax))
            cum = np.cumsum(times)
            k = kmax if not math.isfinite(t_cut) else min(kmax, int(np.searchsorted(cum, t_cut - self.clock)) + 1)
            self.clock += float(cum[k - 1])
            self.busy_s += float(cum[k - 1])
            self.steps += k
            self.rem -= k
            self.ctx += k
            self.ctx_sum += n * k
            self.used += n * k
            if k == min_rem:
                self._retire_finished()
            return
        # speculative: per-step, per-sequence accepted tokens
        room = (self.cap - self.used) // max(1, int(np.minimum(self.q, self.rem).sum()))
        kmax = max(1, min(kmax, SPEC_STRETCH_STEPS, room))
        accepted = accepted_draft_tokens(self.rng, self.tb, (kmax, n))
        gained = np.minimum(np.cumsum(accepted + 1, axis=0), self.rem)  # tokens after j+1 steps
        finished_by = (gained >= self.rem).any(axis=1)
        k_done = int(np.argmax(finished_by)) + 1 if finished_by.any() else kmax
        before = np.concatenate([[0.0], gained.sum(axis=1)[:-1]]) / n
        cum = np.cumsum(self.tb.decode_time_s(n, mean0 + before))
        k = k_done
        if math.isfinite(t_cut):
            k = min(k, int(np.searchsorted(cum, t_cut - self.clock)) + 1)
        tokens = gained[k - 1]
        self.clock += float(cum[k - 1])
        self.busy_s += float(cum[k - 1])
        self.steps += k
        self.rem = self.rem - tokens
        self.ctx = self.ctx + tokens
        grown = int(tokens.sum())
        self.ctx_sum += grown
        self.used += grown
        self._retire_finished()

    def _record(self) -> None:
        self.kv_t.append(self.clock)
        self.kv_used.append(self.used)


class StaticReplica:
    def __init__(self, tables: StepTables, book: Book, rng: np.random.Generator, timeout_s: float):
        self.tb, self.book, self.rng, self.timeout_s = tables, book, rng, timeout_s
        self.cap = tables.kv_capacity_tokens
        self.max_running = tables.max_running
        self.clock = 0.0
        self.busy_s = 0.0
        self.waiting: deque[int] = deque()
        self.batch_size = 0
        self.now = 0.0
        self.kv_t: list[float] = [0.0]
        self.kv_used: list[int] = [0]
        self.steps = 0

    def load(self) -> int:
        in_flight = self.batch_size if self.clock > self.now else 0
        return len(self.waiting) + in_flight

    def enqueue(self, request: int, now: float) -> None:
        self.waiting.append(request)

    def advance_until(self, t: float) -> None:
        """Start every batch that is due by t: a full batch as soon as the replica is free, a partial one when its
        oldest request has waited `timeout_s`."""
        b = self.book
        self.now = t
        while self.waiting:
            if len(self.waiting) >= self.max_running:
                ready = max(self.clock, float(b.arrival_s[self.waiting[self.max_running - 1]]))
            else:
                ready = max(self.clock, float(b.arrival_s[self.waiting[0]]) + self.timeout_s)
            if ready > t:
                return
            self._run_batch(ready)

    def _run_batch(self, start: float) -> None:
        b, tb = self.book, self.tb
        batch: list[int] = []
        longest_in = longest_out = 0
        while self.waiting and len(batch) < self.max_running:
            r = self.waiting[0]
            li, lo = max(longest_in, int(b.input_tokens[r])), max(longest_out, int(b.output_tokens[r]))
            if batch and (len(batch) + 1) * (li + lo) > self.cap:
                break
            self.waiting.popleft()
            batch.append(r)
            longest_in, longest_out = li, lo
        ids = np.asarray(batch, np.int64)
        n = ids.size
        b.admitted_s[ids] = start
        isl = b.input_tokens[ids]
        prefill_end = start + float(np.sum(tb.prefill_busy(isl)))
        b.first_token_s[ids] = prefill_end + tb.prefill_fill_s(isl)
        need = b.output_tokens[ids] - 1  # tokens each still needs after the prefill's first one
        mean_in = float(isl.mean())
        if tb.tokens_per_step == 1:
            steps = int(need.max())
            cum = np.cumsum(tb.decode_time_s(n, mean_in + np.arange(steps)))
            done_step = need  # finishes after this many decode steps
        else:
            gained_blocks, total = [], np.zeros(n, np.int64)
            while (total < need).any():
                acc = accepted_draft_tokens(self.rng, tb, (SPEC_STRETCH_STEPS, n))
                g = total + np.cumsum(acc + 1, axis=0)
                gained_blocks.append(g)
                total = g[-1]
            gained = np.concatenate(gained_blocks) if gained_blocks else np.zeros((0, n), np.int64)
            reached = gained >= need
            done_step = np.where(need > 0, np.argmax(reached, axis=0) + 1, 0)
            steps = int(done_step.max())
            before = np.concatenate([[0.0], gained[: max(steps - 1, 0)].mean(axis=1)])[:steps]
            cum = np.cumsum(tb.decode_time_s(n, mean_in + before))
        fill = tb.prefill_fill_s(isl)
        finish = prefill_end + fill + np.concatenate([[0.0], cum])[done_step]
        b.finish_s[ids] = finish
        end = prefill_end + (float(cum[-1]) if steps else 0.0)  # pipeline fill delays tokens, not the replica
        self.busy_s += end - start
        self.steps += steps + 1
        self.kv_t += [start, end]
        self.kv_used += [n * (longest_in + longest_out), 0]
        self.batch_size = n
        self.clock = end
