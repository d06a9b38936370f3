"""Apache Kafka through aiokafka: idempotent producer with acks=all, manual commits, topic admin."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownProducerId,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import OffsetAndMetadata

from broker.errors import ConfigError, TransportError
from broker.transport.base import Consumer, Record, Sent, Transport

__all__ = ["KafkaSettings", "KafkaTransport"]

log = logging.getLogger("op7.transport.kafka")
_client_log = logging.getLogger("op7.transport.kafka.client")


class _ClientNoise(logging.Filter):
    """aiokafka logs each failed connection attempt and retried request as an ERROR: thousands of lines while a broker
    is away, telling the reader nothing op7 does not report itself (:mod:`broker.transport.health`, the errors of
    sends and commits). They go to DEBUG under ``op7.transport.kafka.client``; tracebacks and CRITICAL stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.levelno >= logging.CRITICAL or record.exc_info:
            return True
        _client_log.debug("%s: %s", record.name, record.getMessage())
        return False


# Filters apply to the logger a record is made on, not to its children: each of aiokafka's loggers gets one.
for _name in (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.cluster",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
):
    logging.getLogger(_name).addFilter(_ClientNoise())


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the cluster and how topics are created on it."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "op7"
    #: Replicas of each topic op7 creates; None: three, or fewer on a smaller cluster.
    replication_factor: int | None = None
    #: min.insync.replicas of the topics op7 creates; None: the broker's default.
    min_insync_replicas: int | None = None
    request_timeout_ms: int = 30_000
    #: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    security_protocol: str = "PLAINTEXT"
    #: CA certificates (PEM) that the brokers' certificates chain to; the system's when None.
    ssl_cafile: str | None = None
    #: Client certificate and key (PEM) for mutual TLS.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = field(default=None, repr=False)
    #: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN, with SASL_*.
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    #: Seconds before a silent group member is considered dead and its partitions reassigned.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    #: Static group membership (KIP-345): a member that comes back under the same id within the session timeout
    #: gets its partitions back without a rebalance of the group. Unique per running process of a group.
    group_instance_id: str | None = None

    def common(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol not in _PROTOCOLS:
            raise ConfigError(f"security protocol {self.security_protocol!r}: one of {', '.join(_PROTOCOLS)}")
        if "SSL" in self.security_protocol:
            try:
                options["ssl_context"] = create_ssl_context(
                    cafile=self.ssl_cafile,
                    certfile=self.ssl_certfile,
                    keyfile=self.ssl_keyfile,
                    password=self.ssl_password,
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"TLS settings: {exc}") from exc
        if self.security_protocol == "SASL_PLAINTEXT":
            log.warning("SASL_PLAINTEXT: credentials and messages cross the network unencrypted; use SASL_SSL")
        if "SASL" in self.security_protocol:
            if not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
                raise ConfigError("SASL needs a mechanism, a user name and a password (OP7_KAFKA_SASL_*)")
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        return options


_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def check_bootstrap(servers: str) -> str:
    """``host:port[,host:port...]``, checked; :class:`ConfigError` naming the bad entry otherwise."""
    for server in servers.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"bootstrap server {server.strip()!r}: expected HOST:PORT, e.g. 127.0.0.1:9092")
    return ",".join(s.strip() for s in servers.split(","))


#: Errors after which an idempotent producer's sequence state is unusable (for instance once the whole cluster
#: restarted): only a new producer, with a new producer id, can write again.
_SEQUENCE_LOST = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


def _mapped(exc: KafkaError, doing: str) -> TransportError:
    return TransportError(f"Kafka: {doing}: {exc.__class__.__name__}: {exc}", retriable=bool(exc.retriable))


class _BeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the consumer's owner before its partitions are taken away, so it commits while its generation is still
    the group's: a commit refused mid-rebalance makes aiokafka rejoin as a new member, and the group then waits a
    whole session timeout for the old one, reading nothing."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked and self._consumer.before_revoke is not None:
            try:
                await self._consumer.before_revoke()
            except Exception:
                # What was not committed is read again by the partition's next owner (at least once).
                log.warning("committing before a rebalance failed", exc_info=True)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class KafkaConsumer(Consumer):
    def __init__(self, settings: KafkaSettings, topics: Sequence[str], group: str, from_beginning: bool) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._consumer = AIOKafkaConsumer(
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            group_instance_id=settings.group_instance_id,
            **settings.common(),
        )

    async def start(self) -> None:
        try:
            await self._consumer.start()
            self._consumer.subscribe(self._topics, listener=_BeforeRevoke(self))
        except KafkaError as exc:
            await self._consumer.stop()
            raise _mapped(exc, f"cannot start consumer on {self._settings.bootstrap_servers}") from exc

    async def stop(self) -> None:
        await self._consumer.stop()

    async def fetch(
        self, timeout: float = 1.0, max_records: int = 500, *, topics: Collection[str] | None = None
    ) -> list[Record]:
        partitions = () if topics is None else [tp for tp in self._consumer.assignment() if tp.topic in topics]
        if topics is not None and not partitions:
            return []
        try:
            batches = await self._consumer.getmany(*partitions, timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaError as exc:
            raise _mapped(exc, "fetch") from exc
        # A tombstone's null value is handed over as empty bytes: every reader of a record then meets a value,
        # and an empty one is no op7 frame, directory or quarantine entry.
        return [
            Record(m.topic, m.partition, m.offset, m.key, m.value if m.value is not None else b"", m.timestamp)
            for msgs in batches.values()
            for m in msgs
        ]

    def owns(self, record: Record) -> bool:
        return TopicPartition(record.topic, record.partition) in self._consumer.assignment()

    async def lag(self) -> dict[tuple[str, int], int]:
        # The end is the high watermark of the partition's last fetch response (no request of its own); records are
        # read uncommitted (the producer is idempotent, not transactional), so the high watermark, not the last
        # stable offset, is where reading ends.
        behind: dict[tuple[str, int], int] = {}
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is None:
                continue  # not fetched from yet
            try:
                position = await self._consumer.position(tp)
            except IllegalStateError:
                continue  # taken away by a rebalance meanwhile
            behind[(tp.topic, tp.partition)] = max(0, end - position)
        return behind

    async def commit_many(self, records: Sequence[Record]) -> list[Record]:
        assigned = self._consumer.assignment()
        last: dict[TopicPartition, Record] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset >= (last[tp].offset if tp in last else -1):
                last[tp] = record
        moved = [r for tp, r in last.items() if tp not in assigned]
        offsets = {tp: OffsetAndMetadata(r.offset + 1, "") for tp, r in last.items() if tp in assigned}
        if not offsets:
            return moved
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            # The group rebalanced between fetch and commit; the new owners start from the last commit.
            return list(last.values())
        except KafkaError as exc:
            where = ", ".join(f"{tp.topic}[{tp.partition}]@{r.offset}" for tp, r in last.items())
            raise _mapped(exc, f"commit {where}") from exc
        return moved


class KafkaTransport(Transport):
    """Apache Kafka. Records are durable once :meth:`send` returns (acks=all, idempotent producer)."""

    name = "kafka"

    def __init__(self, settings: KafkaSettings | None = None, **kwargs: Any) -> None:
        self.settings = settings or KafkaSettings(**kwargs)
        check_bootstrap(self.settings.bootstrap_servers)
        self._producer: AIOKafkaProducer | None = None
        self._renewing = asyncio.Lock()
        self._retired: set[asyncio.Future[None]] = set()
        #: How often the producer was replaced after losing its sequence state.
        self.renewals = 0
        #: The client of :meth:`probe`, once it has reached the cluster.
        self._prober: AIOKafkaClient | None = None

    async def start(self) -> None:
        self._producer = await self._new_producer()

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=2, **self.settings.common())
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise _mapped(exc, f"cannot reach {self.settings.bootstrap_servers}") from exc
        return producer

    async def _renew(self, broken: AIOKafkaProducer, why: str) -> None:
        """Replace ``broken`` by a new producer (a new producer id, fresh sequences), once however many sends saw it
        fail; its queued records fail and are sent again by their callers (the node's outbox) with the same bytes."""
        stop = broken.stop
        async with self._renewing:
            if self._producer is not broken:
                return
            log.warning("Kafka producer renewed: %s", why)
            self._producer = await self._new_producer()
            self.renewals += 1
        self._retired.add(asyncio.ensure_future(stop()))
        self._retired = {t for t in self._retired if not t.done()}

    def _usable(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise TransportError("Kafka transport is not started", retriable=True)
        return self._producer

    @staticmethod
    def _sender_dead(producer: AIOKafkaProducer) -> bool:
        # aiokafka's sender task ends for good on a sequence error, and records queued after that wait for ever:
        # nothing public tells, so its task is looked at.
        task = getattr(getattr(producer, "_sender", None), "sender_task", None)
        return task is not None and task.done()

    async def stop(self) -> None:
        if self._prober is not None:
            await self._prober.close()
            self._prober = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)
            self._retired.clear()

    async def probe(self, timeout: float) -> None:
        """A metadata request to any broker of the cluster; the first one bootstraps a client kept for the next."""
        servers = self.settings.bootstrap_servers
        try:
            async with asyncio.timeout(timeout):
                if self._prober is not None:
                    await self._prober.fetch_all_metadata()
                    return
                client = AIOKafkaClient(**self.settings.common())
                try:
                    await client.bootstrap()
                except BaseException:
                    await client.close()
                    raise
                self._prober = client
        except TimeoutError:
            message = f"Kafka: no broker of {servers} answered within {timeout:g} s"
            raise TransportError(message, retriable=True) from None
        except KafkaError as exc:
            raise _mapped(exc, f"cannot reach {servers}") from exc

    async def create_topic(
        self, topic: str, *, partitions: int = 3, compacted: bool = False, retention: timedelta | None = None
    ) -> None:
        admin = AIOKafkaAdminClient(**self.settings.common())
        configs = {"cleanup.policy": "compact"} if compacted else {}
        if retention is not None:
            configs["retention.ms"] = str(int(retention.total_seconds() * 1000))
        if self.settings.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.settings.min_insync_replicas)
        try:
            await admin.start()
            replicas = self.settings.replication_factor
            if replicas is None:
                replicas = min(3, len((await admin.describe_cluster())["brokers"]))
            response = await admin.create_topics([NewTopic(topic, partitions, replicas, topic_configs=configs)])
            # Under ACLs the operator creates the topics and a node may not, not even one that exists: then what
            # the node needs is that the topic is there.
            denied = any(e[1] == TopicAuthorizationFailedError.errno for e in response.topic_errors)
            there = denied and all(t["error_code"] == 0 for t in await admin.describe_topics([topic]))
        except KafkaError as exc:
            raise _mapped(exc, f"create topic {topic}") from exc
        finally:
            await admin.close()
        for entry in response.topic_errors:
            code = entry[1]
            if code == TopicAlreadyExistsError.errno or (code == TopicAuthorizationFailedError.errno and there):
                continue
            if code == TopicAuthorizationFailedError.errno:
                raise TransportError(
                    f"Kafka: topic {topic} does not exist (or is not visible to this principal) and this principal "
                    "may not create it: the operator creates topics ('op7 topics create')",
                    retriable=False,
                )
            if code != 0:
                error = for_code(code)
                raise TransportError(f"Kafka: create topic {topic}: {error.__name__}", retriable=error.retriable)
            log.info("created topic %s (%d partitions)", topic, partitions)

    async def cluster_id(self) -> str | None:
        admin = AIOKafkaAdminClient(**self.settings.common())
        try:
            await admin.start()
            described = await admin.describe_cluster()
        except KafkaError as exc:
            raise _mapped(exc, "describe the cluster") from exc
        finally:
            await admin.close()
        found = described.get("cluster_id")
        return str(found) if found else None

    async def delete_topic(self, topic: str) -> None:
        admin = AIOKafkaAdminClient(**self.settings.common())
        try:
            await admin.start()
            response = await admin.delete_topics([topic])
        except KafkaError as exc:
            raise _mapped(exc, f"delete topic {topic}") from exc
        finally:
            await admin.close()
        for _name, code, *_ in response.topic_error_codes:
            if code not in (0, UnknownTopicOrPartitionError.errno):
                error = for_code(code)
                raise TransportError(f"Kafka: delete topic {topic}: {error.__name__}", retriable=error.retriable)

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None) -> Sent:
        return await (await self.send_soon(topic, value, key=key))

    async def send_soon(self, topic: str, value: bytes, *, key: bytes | None = None) -> Awaitable[Sent]:
        producer = self._usable()
        if self._sender_dead(producer):
            await self._renew(producer, "its sender had stopped")
            producer = self._usable()
        try:
            queued = await producer.send(topic, value, key=key)
        except KafkaError as exc:
            raise _mapped(exc, f"send to {topic}") from exc
        return self._sent(producer, topic, queued)

    async def _sent(self, producer: AIOKafkaProducer, topic: str, queued: Awaitable[Any]) -> Sent:
        try:
            meta = await queued
        except _SEQUENCE_LOST as exc:
            await self._renew(producer, f"{exc.__class__.__name__} on {topic}")
            raise TransportError(
                f"Kafka: send to {topic}: {exc.__class__.__name__} (producer renewed)", retriable=True
            ) from exc
        except KafkaError as exc:
            raise _mapped(exc, f"send to {topic}") from exc
        return Sent(meta.topic, meta.partition, meta.offset)

    async def send_many(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> list[Sent]:
        # Queue everything first (the producer batches by partition and linger), then wait for all acks.
        queued = [await self.send_soon(topic, value, key=key) for key, value in records]
        return list(await asyncio.gather(*queued))

    async def partitions_of(self, topics: Sequence[str]) -> list[TopicPartition]:
        """The partitions of ``topics`` (of those that exist); none when the cluster is out of reach (the consumers
        then say so themselves)."""
        client = AIOKafkaClient(**self.settings.common())
        try:
            async with asyncio.timeout(10):
                await client.bootstrap()
                metadata = await client.fetch_all_metadata()
        except (KafkaError, TimeoutError, OSError) as exc:
            log.debug("partitions of %s not known: %s", ", ".join(topics), exc)
            return []
        finally:
            await client.close()
        return [TopicPartition(t, p) for t in topics for p in sorted(metadata.partitions_for_topic(t) or ())]

    async def start_group_at_end(self, group: str, partitions: Sequence[TopicPartition]) -> None:
        """Commit the end of each of ``partitions`` that ``group`` has no offset for yet: members that join later
        start there, wherever a rebalance moves a partition (``--from-now`` with several members)."""
        consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **self.settings.common())
        try:
            async with asyncio.timeout(30):
                await consumer.start()
                consumer.assign(list(partitions))
                ends = await consumer.end_offsets(list(partitions))
                fresh = {
                    tp: OffsetAndMetadata(ends[tp], "") for tp in partitions if await consumer.committed(tp) is None
                }
                if fresh:
                    await consumer.commit(fresh)
        except (KafkaError, TimeoutError) as exc:
            # A group with live members refuses a commit from outside: they hold its positions already.
            log.info("group %s keeps its positions: %s", group, exc)
        finally:
            await consumer.stop()

    def consumer(self, topics: Sequence[str], group: str, *, from_beginning: bool = True) -> Consumer:
        return KafkaConsumer(self.settings, topics, group, from_beginning)
