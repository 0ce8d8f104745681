# The state store: records of which containers held which modules, meaningless
# without modgate (a tmpfs: a reboot empties it too).
rm -rf /run/modgate
