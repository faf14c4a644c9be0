"""sendplan: SEND placement sufficiency and High Needs Block forecasting for English local authorities."""

__version__ = "0.1.0"
