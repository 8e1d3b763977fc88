#!/usr/bin/env bash
# Install Apache Kafka's broker (KRaft mode) from Maven Central, for the tests
# that run against real Apache Kafka (FCSINK_BROKER=kafka, make kafka-cluster).
#
#   scripts/install-kafka.sh                      # into <repo>/.tools (git-ignored)
#   FCSINK_TOOLS=~/.cache/fcsink-tools scripts/install-kafka.sh
#
# Apache publishes the broker as jars (org.apache.kafka:kafka_2.13 and its
# modules); Maven copies them and their dependencies into
# $FCSINK_TOOLS/kafka-<version>/libs, with log4j2 as the logging binding.
# Safe to run repeatedly: Maven runs only when the libs folder lacks its
# completion marker. Needs Java 17+ and Maven. The last line printed is the
# libs folder (the tests read it from KAFKA_LIBS, or look in the same place
# when FCSINK_TOOLS is set the same way).
set -euo pipefail

KAFKA_VERSION="4.1.1"
LOG4J_VERSION="2.25.3"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${FCSINK_TOOLS:-$repo/.tools}"
home="$tools/kafka-$KAFKA_VERSION"
libs="$home/libs"
marker="$libs/.complete"

if [[ -f "$marker" ]]; then
    echo "Apache Kafka $KAFKA_VERSION already installed" >&2
    echo "$libs"
    exit 0
fi

for tool in java mvn; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (Kafka needs Java 17+ and Maven)" >&2; exit 1; }
done

echo "Installing Apache Kafka $KAFKA_VERSION into $home (Maven Central)" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

deps=""
for artifact in kafka_2.13 kafka-server kafka-raft kafka-storage kafka-metadata \
    kafka-tools kafka-clients kafka-group-coordinator kafka-share-coordinator \
    kafka-transaction-coordinator; do
    deps+="<dependency><groupId>org.apache.kafka</groupId><artifactId>$artifact</artifactId><version>$KAFKA_VERSION</version></dependency>"
done
# Kafka logs through slf4j 1.7, so the binding is log4j-slf4j-impl (not -slf4j2-).
for artifact in log4j-api log4j-core log4j-slf4j-impl; do
    deps+="<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>$artifact</artifactId><version>$LOG4J_VERSION</version></dependency>"
done
cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fcsink</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>$deps</dependencies>
</project>
EOF

rm -rf "$libs.partial"
mkdir -p "$libs.partial"
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs.partial" >&2
# Tests and examples are not the broker.
rm -f "$libs.partial"/*-test.jar "$libs.partial"/*-tests.jar
if ! ls "$libs.partial"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1; then
    echo "error: Maven did not copy kafka_2.13-$KAFKA_VERSION.jar" >&2
    exit 1
fi
rm -rf "$libs"
mkdir -p "$home"
mv "$libs.partial" "$libs"
touch "$marker"
echo "$libs"
