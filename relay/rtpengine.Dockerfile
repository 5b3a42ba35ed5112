# rtpengine from Debian's own package (the same one install.sh installs natively).
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends rtpengine-daemon \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["rtpengine", "--foreground", "--log-stderr", "--table=-1"]
