# Stand-in for redis:7: Debian bookworm minbase and Debian's redis-server (7.0). Built by build.sh.
FROM edge-standin/debian:bookworm-minbase
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
# The official image runs with protected mode off (no config file, bound to every address);
# Debian's binary keeps it on, which refuses the other containers. The wrapper turns it off.
COPY redis-server-wrapper /usr/local/bin/redis-server
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
