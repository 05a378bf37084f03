#!/bin/sh
# Prints the password of the vault id it is asked for (--vault-id LABEL).
[ "$1" = --vault-id ] && [ "$2" = default ] && echo lbctl-test-pass
