"""Published data sources that scenarios are built from (DfE SEN2), shipped as compact tables."""
