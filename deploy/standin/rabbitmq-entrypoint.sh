#!/bin/sh
# The stand-in RabbitMQ image's entrypoint (deploy/standin/rabbitmq.Dockerfile). Like the official image it takes
# the account from RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS and runs with the management plugin; it writes the
# mounted /etc/rabbitmq/rabbitmq.conf plus those settings to a configuration file of its own, leaving out the keys
# Debian bookworm's RabbitMQ 3.10 does not know (default_queue_type: Conveyor declares its queues' type anyway).
set -eu
data=/var/lib/rabbitmq
conf=$data/standin.conf
{
    if [ -f /etc/rabbitmq/rabbitmq.conf ]; then
        grep -v -E '^[[:space:]]*default_queue_type[[:space:]]*=' /etc/rabbitmq/rabbitmq.conf
    fi
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
} >"$conf"
echo '[rabbitmq_management].' >"$data/enabled_plugins"
chown rabbitmq:rabbitmq "$conf" "$data/enabled_plugins" "$data"
export RABBITMQ_CONFIG_FILE=$conf RABBITMQ_ENABLED_PLUGINS_FILE=$data/enabled_plugins
# The health check's CLI calls run in other processes: give them the same files.
printf 'CONFIG_FILE=%s\nENABLED_PLUGINS_FILE=%s\n' "$conf" "$data/enabled_plugins" >/etc/rabbitmq/rabbitmq-env.conf
# The server runs as the rabbitmq user (home /var/lib/rabbitmq, where its Erlang cookie lives), in the foreground.
if [ "${1:-}" = rabbitmq-server ]; then
    shift
    set -- runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
