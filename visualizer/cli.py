"""Command line entry point (placeholder until the app lands)."""
import core


def main(argv=None) -> int:
    print(f"bpttlab {core.__version__}")
    return 0
