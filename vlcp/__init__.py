"""vlcp: an SDN controller that turns Open vSwitch servers into isolated virtual networks."""

__version__ = "0.1.0"
