#!/usr/bin/env bash
# Stops the single-node cluster started by start-local-slurm.sh.
pkill -x slurmd || true
pkill -x slurmctld || true
pkill -x munged || true
