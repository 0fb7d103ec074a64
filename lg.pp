/dev/fd/3: line 71: ./loadgen: No such file or directory
