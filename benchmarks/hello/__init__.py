"""The functions-framework hello-world every figure is compared with."""
