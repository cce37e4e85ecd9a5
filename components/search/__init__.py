"""Architecture and hyper-parameter search with NNI; trials run as processes under NNI's manager."""
