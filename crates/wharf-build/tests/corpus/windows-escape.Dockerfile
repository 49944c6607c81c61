# escape=`

FROM mcr.microsoft.com/windows/servercore
COPY testfile.txt c:\
RUN dir c:\
RUN echo one `
    two `

    three
ENV PATHX=C:\tools `
    B=2
