module QueCC.Experiments.Tests.Smoke
