"""Batched decoding for the `local` backend: concurrent requests share llama.cpp's decode steps.

A llama.cpp context holds one sequence (and one KV stream, the cache being non-unified) per slot;
`serve` runs on the backend's llama.cpp thread and does every decode. A request is admitted to a free slot, its prompt is evaluated on its own in
n_batch chunks from position 0 as llama-cpp-python evaluates it, and from then on its one-token
generation steps are decoded in one batch with those of every other active request. A request that
arrives while others generate joins at the next step.

Why answers stay exactly those of the one-call-at-a-time path, whatever else is in the batch:
- each sequence has its own KV stream, filled from position 0 in order, so its cache cells and the
  attention sums over them are laid out as in a context of its own;
- each has its own sampler chain, seeded from its own request (`local_plan.make_sampler`);
- llama.cpp's CPU kernels compute most weight types row by row, so a row's logits do not depend
  on the other rows of a step. Some do not: repacked Q4_K weights, for one, go through a kernel
  that mixes rows once a step has 4 or more. `RowProbe` measures, when the context is made, the
  widest step whose rows all equal single-row steps bit for bit, and steps are cut to that width.
- a shared prompt prefix (`share_prefix`) is evaluated once and its KV stream copied to the
  sequences that share it. That equals a fresh evaluation only where a chunk's rows do not depend on
  where the chunk was cut: one-token chunks never qualify (`chunk_safe_prefix` avoids them), longer
  ones do for most weight types, which the probe checks; where they do not, nothing is shared.
benchmarks/backends.py measures the speed and tests/test_local_batching.py the equality.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, Callable

from econash.log import get_logger, note

from .local_plan import RequestPlan, TextAssembly, make_sampler, plan_request

LOG = get_logger("backends.local")
# Prefixes shorter than this are evaluated again rather than copied: a copy moves the whole stream.
MIN_SHARED_PREFIX = 8


class LlamaThread:
    """The one thread that runs a backend's llama.cpp work, in the order submitted. A daemon thread, so
    that a backend nobody closed (a library user's script, a crash) does not keep the process alive
    while the batched decoder's loop waits for requests; decoders still open at exit are closed first
    (`_close_open_decoders`), so that no decode runs while the interpreter frees the model."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        threading.Thread(target=self._work, name="econash-local", daemon=True).start()

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, function, args))
        return future

    def stop(self) -> None:
        """The thread ends once the work submitted before has run."""
        self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, function, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args))
                except BaseException as exc:  # handed to the caller, as an executor does
                    future.set_exception(exc)


_OPEN_DECODERS: weakref.WeakSet[BatchedDecoder] = weakref.WeakSet()


@atexit.register
def _close_open_decoders() -> None:
    for decoder in list(_OPEN_DECODERS):
        decoder.close()


@dataclass
class _Pending:
    messages: list[dict[str, Any]]
    settings: dict[str, Any]
    future: Future[dict[str, Any]]


@dataclass
class _Sequence:
    slot: int
    plan: RequestPlan
    assembly: TextAssembly
    sampler: Any
    future: Future[dict[str, Any]]
    next_token: int = -1  # sampled, not yet evaluated


@dataclass
class _Slot:
    cached: list[int] = field(default_factory=list)  # tokens whose KV fills this stream from position 0
    sequence: _Sequence | None = None


def chunk_safe_prefix(shared: int, length: int, n_batch: int) -> int:
    """The longest reusable prefix, at most `shared` tokens of a `length`-token prompt, after which the
    prompt's chunks are computed by the kernels a fresh evaluation computes them with. llama.cpp
    computes a chunk of one token with other kernels than a longer one (llamafile's sgemm takes over
    at two rows) and the results differ in the last bits, so the first chunk after the prefix keeps
    at least two tokens unless it starts where a fresh evaluation's chunk starts (a multiple of n_batch)."""
    end = min(length, (shared // n_batch + 1) * n_batch)
    if shared % n_batch and end - shared == 1:
        return shared - 1
    return shared


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class BatchedDecoder:
    """Decodes up to `parallel` requests together on `llama`'s model (a llama_cpp.Llama whose own
    context is not used: it lends its model, tokenizer and chat template)."""

    def __init__(self, llama: Any, *, parallel: int, n_ctx: int, n_batch: int, n_threads: int,
                 n_threads_batch: int, share_prefix: bool) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llama = llama
        self.parallel = parallel
        self.n_batch = min(n_ctx, n_batch)
        self.n_threads, self.n_threads_batch = n_threads, n_threads_batch
        params = type(llama.context_params).from_buffer_copy(llama.context_params)
        params.n_ctx, params.n_seq_max, params.kv_unified = n_ctx * parallel, parallel, False
        params.n_batch, params.n_ubatch = self.n_batch, min(self.n_batch, 512)  # as Llama sets them
        self._ctx = llama_cpp.llama_init_from_model(llama.model, params)
        if self._ctx is None:
            raise RuntimeError("llama_context could not be created")
        self.n_ctx = llama_cpp.llama_n_ctx_seq(self._ctx)  # per sequence: what Llama.n_ctx() is alone
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(max(self.n_batch, parallel), 0, 1)
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._n_vocab = llama.n_vocab()
        self._slots = [_Slot() for _ in range(parallel)]
        self._queue: deque[_Pending] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._closed = False
        self._serving = False
        self._served = threading.Event()
        probe = RowProbe(self)
        self.exact_width = probe.exact_width()  # at most n_batch, llama.cpp's limit on a batch
        self.share_prefix = share_prefix and probe.split_is_exact()
        self._clear()
        if self.exact_width < parallel:
            note(LOG, f"this model's kernels mix the rows of steps wider than {self.exact_width}; batched "
                      f"decoding keeps its steps to {self.exact_width} rows so that answers stay exact.")
        if share_prefix and not self.share_prefix:
            note(LOG, "this model's kernels depend on where a prompt is cut; shared prefixes are evaluated "
                      "again for each request so that answers stay exact.")
        _OPEN_DECODERS.add(self)

    # --- requests ---------------------------------------------------------------------------

    def submit(self, messages: list[dict[str, Any]], **settings: Any) -> Future[dict[str, Any]]:
        """Queue a chat request; its future gives create_chat_completion's response. Cancelling the
        future drops the request, and frees its slot at the next step if it was running."""
        future: Future[dict[str, Any]] = Future()
        with self._wake:
            if self._closing:
                raise RuntimeError("the batched decoder is closed")
            self._queue.append(_Pending(messages, settings, future))
            self._wake.notify()
        return future

    def close(self) -> None:
        """Stop serving (requests still queued or running fail) and free llama.cpp's objects; once only."""
        with self._wake:
            if self._closed:
                return
            self._closed = self._closing = True
            self._wake.notify()
            serving = self._serving
        if serving:
            self._served.wait()
        for pending in self._queue:
            _fail(pending.future, RuntimeError("the local backend was closed"))
        for slot in self._slots:
            if slot.sequence is not None:
                self._finish(slot.sequence, error=RuntimeError("the local backend was closed"))
        self._lib.llama_batch_free(self._batch)
        self._lib.llama_free(self._ctx)

    # --- the serving loop ---------------------------------------------------------------------

    def serve(self) -> None:
        """Admit and decode requests until close(); run it on the thread that made the decoder."""
        with self._wake:
            if self._closing:
                return
            self._serving = True
        try:
            self._serve()
        finally:
            self._served.set()

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._closing and not self._queue and not self._running():
                    self._wake.wait()
                if self._closing:
                    return
                free = sum(slot.sequence is None for slot in self._slots)
                admitted = [self._queue.popleft() for _ in range(min(free, len(self._queue)))]
            try:
                for pending in admitted:
                    self._admit(pending)
                self._step()
            except Exception as exc:  # a fault of the decoder itself: fail what runs rather than hang it
                for pending in admitted:
                    _fail(pending.future, exc)
                for sequence in self._running():
                    self._finish(sequence, error=exc)
                self._clear()

    def _running(self) -> list[_Sequence]:
        return [slot.sequence for slot in self._slots if slot.sequence is not None]

    def _admit(self, pending: _Pending) -> None:
        if pending.future.cancelled():
            return
        try:
            plan = plan_request(self._llama, self.n_ctx, pending.messages, **pending.settings)
        except Exception as exc:  # a prompt too long for the context: that request's error only
            _fail(pending.future, exc)
            return
        index = self._place(plan.prompt)
        sampler = make_sampler(plan, self._n_vocab, self._llama.last_n_tokens_size)
        assembly = TextAssembly(plan=plan, llama=self._llama,
                                is_end=lambda token: self._lib.llama_vocab_is_eog(self._vocab, token))
        sequence = _Sequence(index, plan, assembly, sampler, pending.future)
        self._slots[index].sequence = sequence
        try:
            self._evaluate_prompt(index, plan.prompt)
        except Exception as exc:
            self._finish(sequence, error=exc)
            return
        self._take(sequence, self._lib.llama_sampler_sample(sampler, self._ctx, -1), -1)

    def _place(self, prompt: list[int]) -> int:
        """A free slot for this prompt, its stream holding the longest prefix of it that any stream
        holds (copied there from another stream when sharing is on): positions beyond are removed."""
        free = [i for i, slot in enumerate(self._slots) if slot.sequence is None]
        usable = len(prompt) - 1  # the last prompt token is always evaluated, for its logits
        if not self.share_prefix:
            index = free[0]
            self._remove(index, 0)
            return index
        common = [min(usable, _common_prefix(slot.cached, prompt)) for slot in self._slots]
        index = max(free, key=lambda i: (common[i], -len(self._slots[i].cached)))
        donor = max(range(len(self._slots)), key=common.__getitem__)  # the first of the longest
        shared = common[index]
        if common[donor] > shared and common[donor] >= MIN_SHARED_PREFIX:
            # Across streams llama.cpp copies a whole stream; the tail beyond the prefix goes next.
            self._lib.llama_memory_seq_cp(self._memory, donor, index, -1, -1)
            self._slots[index].cached = list(self._slots[donor].cached)
            shared = common[donor]
        self._remove(index, chunk_safe_prefix(shared, len(prompt), self.n_batch))
        return index

    def _remove(self, index: int, keep: int) -> None:
        self._lib.llama_memory_seq_rm(self._memory, index, keep if keep > 0 else -1, -1)
        del self._slots[index].cached[keep:]

    def _evaluate_prompt(self, index: int, prompt: list[int]) -> None:
        """Evaluate what the slot's stream lacks of the prompt, in n_batch chunks counted from position
        0 as Llama.eval counts them, the last token of each chunk with logits as Llama.eval asks."""
        self._lib.llama_set_n_threads(self._ctx, self.n_threads, self.n_threads_batch)
        cached = self._slots[index].cached
        start = len(cached)
        while start < len(prompt):
            end = min(len(prompt), (start // self.n_batch + 1) * self.n_batch)
            rows = [(prompt[p], p, index, p == end - 1) for p in range(start, end)]
            self._decode(rows)
            cached.extend(prompt[start:end])
            start = end

    def _decode(self, rows: list[tuple[int, int, int, bool]]) -> None:
        batch = self._batch
        batch.n_tokens = len(rows)
        for i, (token, position, sequence, logits) in enumerate(rows):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position, 1
            batch.seq_id[i][0], batch.logits[i] = sequence, logits
        status = self._lib.llama_decode(self._ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")

    def _step(self) -> None:
        """One generation step for every running sequence, in batches of at most exact_width rows."""
        running = []
        for sequence in self._running():
            if sequence.future.cancelled():
                self._finish(sequence)
            else:
                running.append(sequence)
        # A step uses the decoding threads, as a one-token step alone does (llama.cpp would take the
        # prompt threads for a batch of several tokens).
        self._lib.llama_set_n_threads(self._ctx, self.n_threads, self.n_threads)
        for first in range(0, len(running), self.exact_width):
            group = running[first:first + self.exact_width]
            try:
                self._decode([(s.next_token, len(self._slots[s.slot].cached), s.slot, True) for s in group])
            except Exception as exc:
                for sequence in group:
                    self._finish(sequence, error=exc)
                continue
            for row, sequence in enumerate(group):
                self._slots[sequence.slot].cached.append(sequence.next_token)
                self._take(sequence, self._lib.llama_sampler_sample(sequence.sampler, self._ctx, row), row)

    def _take(self, sequence: _Sequence, token: int, row: int) -> None:
        cached = self._slots[sequence.slot].cached
        logits = self._row_logits(row) if sequence.plan.stopping_criteria is not None else None
        if sequence.assembly.add(token, cached, logits):
            self._finish(sequence)
        elif len(cached) >= self.n_ctx:  # only a held-back UTF-8 character can run this far
            self._finish(sequence, error=RuntimeError(f"the answer filled the context of {self.n_ctx} tokens"))
        else:
            sequence.next_token = token

    def _row_logits(self, row: int) -> Any:
        import numpy as np

        pointer = self._lib.llama_get_logits_ith(self._ctx, row)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).copy()

    def _finish(self, sequence: _Sequence, error: BaseException | None = None) -> None:
        self._slots[sequence.slot].sequence = None
        self._lib.llama_sampler_free(sequence.sampler)
        if error is not None:
            _fail(sequence.future, error)
            self._remove(sequence.slot, 0)
        elif sequence.assembly.finish_reason is not None:
            try:
                sequence.future.set_result(sequence.assembly.response())
            except InvalidStateError:  # cancelled meanwhile
                pass

    def _clear(self) -> None:
        self._lib.llama_memory_clear(self._memory, True)
        for slot in self._slots:
            slot.cached.clear()


def _fail(future: Future[Any], error: BaseException) -> None:
    try:
        future.set_exception(error)
    except InvalidStateError:  # cancelled meanwhile
        pass


class RowProbe:
    """Checks, on the decoder's own context, that a row's logits do not depend on the rest of its step
    (`exact_width`) nor on where a prompt is cut into chunks (`split_is_exact`). Kernels are chosen by
    shape, not by data, so a bit-for-bit match on one input stands for all inputs of that shape."""

    TEXT = "The keeper of the old lighthouse counted ships at dawn, and wrote each name in a book."

    def __init__(self, decoder: BatchedDecoder) -> None:
        self.decoder = decoder
        self.tokens = decoder._llama.tokenize(self.TEXT.encode("utf-8"), add_bos=False)

    def _logits(self, row: int) -> bytes:
        return bytes(self.decoder._row_logits(row).data)

    def exact_width(self) -> int:
        decoder, tokens = self.decoder, self.tokens
        decoder._clear()
        prefix = min(4, decoder.n_batch)
        widest = min(decoder.parallel, decoder.n_batch)
        alone = []
        for slot in range(widest):
            start = slot % (len(tokens) - prefix - 1)
            decoder._decode([(tokens[start + p], p, slot, p == prefix - 1) for p in range(prefix)])
            decoder._decode([(tokens[start + prefix], prefix, slot, True)])
            alone.append(self._logits(0))
            decoder._lib.llama_memory_seq_rm(decoder._memory, slot, prefix, -1)
        width = 1
        for candidate in range(2, widest + 1):
            rows = [(tokens[slot % (len(tokens) - prefix - 1) + prefix], prefix, slot, True) for slot in range(candidate)]
            decoder._decode(rows)
            same = all(self._logits(row) == alone[row] for row in range(candidate))
            for slot in range(candidate):
                decoder._lib.llama_memory_seq_rm(decoder._memory, slot, prefix, -1)
            if not same:
                break
            width = candidate
        return width

    def split_is_exact(self) -> bool:
        decoder = self.decoder
        tokens = self.tokens[:decoder.n_batch]
        whole = None
        # Cuts that leave at least two tokens on each side, as the decoder's own cuts do (chunk_safe_prefix).
        for cut in (len(tokens), *(cut for cut in (2, 5, 13, len(tokens) - 2) if 2 <= cut <= len(tokens) - 2)):
            decoder._clear()
            for part in (range(0, cut), range(cut, len(tokens))):
                if part:
                    decoder._decode([(tokens[p], p, 0, p == len(tokens) - 1) for p in part])
            logits = self._logits(-1)
            if whole is None:
                whole = logits
            elif logits != whole:
                return False
        return True
